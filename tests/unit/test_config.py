"""app/config.py: every setting comes from one table of variables, with its unit and default;
reading the settings writes nothing."""

import dataclasses
import os
import stat

import pytest

from app import config
from app.config import VARIABLES, Settings, load_settings, markdown_table
from app.sandbox import supervisor


def test_every_setting_has_exactly_one_variable():
    fields = {f.name for f in dataclasses.fields(Settings)}
    set_by = [v.field for v in VARIABLES if v.field != "redis_tls_url"]  # an alias of REDIS_URL
    assert sorted(set_by) == sorted(fields)
    assert len({v.name for v in VARIABLES}) == len(VARIABLES)


def test_an_unset_variable_takes_its_default(tmp_path):
    settings = load_settings({"BRISA_VAR_DIR": str(tmp_path)})
    derived = {"database_url", "redis_tls_url", "var_dir"}
    for variable in VARIABLES:
        if variable.field not in derived:
            assert getattr(settings, variable.field) == variable.default, variable.name
    assert settings.database_url == f"sqlite:///{tmp_path / 'brisa.db'}"
    assert settings.embedded and settings.redis_url is None


def test_a_tunable_is_read_with_its_unit():
    settings = load_settings(
        {
            "BRISA_CALLBACK_ATTEMPTS": "3",
            "BRISA_WEBHOOK_REPLAY_WINDOW_S": "60",
            "BRISA_SANDBOX_TICK_S": "0.5",
            "BRISA_RETENTION_DAYS": "7",
            "BRISA_LOAD_EXAMPLES": "0",
        }
    )
    assert settings.callback_attempts == 3
    assert settings.webhook_replay_window_s == 60.0
    assert settings.sandbox_tick_s == 0.5
    assert settings.retention_days == 7
    assert settings.load_examples is False


def test_a_bad_value_is_an_error_naming_its_variable():
    with pytest.raises(ValueError, match=r"BRISA_INVOKE_POLL_S='soon': expected a number of sec"):
        load_settings({"BRISA_INVOKE_POLL_S": "soon"})


def test_redis_tls_url_wins_over_redis_url():
    env = {"REDIS_URL": "redis://plain", "REDIS_TLS_URL": "rediss://tls"}
    assert load_settings(env).redis_url == "rediss://tls"
    assert load_settings({"REDIS_URL": "redis://plain"}).redis_url == "redis://plain"


def test_reading_the_settings_writes_no_file_and_the_key_is_made_on_first_use(tmp_path):
    var_dir = tmp_path / "var"
    settings = load_settings({"BRISA_VAR_DIR": str(var_dir)})
    assert not var_dir.exists()
    key = settings.secret_key
    assert (var_dir / "secret_key").read_text() == key
    assert stat.S_IMODE(os.stat(var_dir / "secret_key").st_mode) == 0o600
    assert os.listdir(var_dir) == ["secret_key"]  # no temporary file left behind
    again = load_settings({"BRISA_VAR_DIR": str(var_dir)})
    assert again.secret_key == key


def test_secret_key_from_the_environment_is_used_and_not_shown(tmp_path):
    settings = load_settings({"BRISA_VAR_DIR": str(tmp_path), "SECRET_KEY": "s3cr3t"})
    assert settings.secret_key == "s3cr3t"
    assert "s3cr3t" not in repr(settings)
    assert list(tmp_path.iterdir()) == []


def test_the_table_lists_every_variable():
    table = markdown_table()
    for variable in VARIABLES:
        assert f"| `{variable.name}` |" in table
    assert "| `BRISA_CALLBACK_TIMEOUT_S` | 5 | seconds |" in table


def test_the_sandbox_defaults_are_the_variables_defaults():
    """app/sandbox reads no settings: the worker passes them to supervisor.configure."""
    defaults = {v.field: v.default for v in VARIABLES}
    assert supervisor.Tuning().tick_s == defaults["sandbox_tick_s"]
    assert supervisor.Tuning().spares == defaults["sandbox_spares"]


def test_current_is_read_once():
    config.current.cache_clear()
    try:
        assert config.current() is config.current()
    finally:
        config.current.cache_clear()
