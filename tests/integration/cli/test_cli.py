"""``python -m app``: the operator commands on each backend's database (deploy --local among
them), and what every command does before it talks to a server (help, usage errors, local
file problems). The commands that talk HTTP run against a live system in
tests/e2e/test_cli.py."""

import argparse
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from app.cli import commands as brisa_cli
from app.store import migrations
from tests.conftest import (
    FUNCTIONS_DIR,
    POSTGRES_URL,
    backend_env,
    edited_examples,
    require_postgres,
    reset_postgres,
)
from tests.system import free_port

ROOT = Path(__file__).resolve().parents[3]


def cli(backend, *args, check=True):
    """``python -m app ARGS`` on the backend's database (tests/integration/engine/test_retention.py
    uses it too)."""
    env = {**os.environ, **backend.env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=60
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_migrate_is_idempotent(backend):
    assert cli(backend, "migrate").stdout.strip().startswith("schema at version")
    assert cli(backend, "migrate").returncode == 0


def test_token_create_list_and_revoke(backend, client):
    token = cli(backend, "token", "create", "--role", "viewer", "--name", "ci").stdout
    assert token.count("\n") == 1 and token.startswith("brisa_")
    headers = {"Authorization": f"Bearer {token.strip()}"}
    assert client.get("/api/v1/dags", headers=headers).status_code == 200
    assert client.post("/api/v1/dags", json={}, headers=headers).status_code == 403

    listed = cli(backend, "token", "list").stdout.split()
    assert listed[1:4] == ["viewer", "active", "ci"]
    assert cli(backend, "token", "revoke", listed[0]).stdout.strip() == (
        f'{{"revoked": {listed[0]}}}'
    )
    assert client.get("/api/v1/dags", headers=headers).status_code == 401
    missing = cli(backend, "token", "revoke", "9999", check=False)
    assert missing.returncode == 1 and "no token 9999" in missing.stderr


def subcommands(parser: argparse.ArgumentParser, path=()):
    """(words, parser) for every command and subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from subcommands(child, (*path, name))


def test_every_command_has_help(capsys):
    commands = list(subcommands(brisa_cli._parser()))
    assert len(commands) >= 30
    for words, parser in commands:
        assert parser.description, words
        with pytest.raises(SystemExit) as exited:
            brisa_cli.main([*words, "--help"])
        assert exited.value.code == 0
        assert "usage: python -m app " + " ".join(words) in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nope"],
        ["dags"],
        ["dags", "trigger"],
        ["dags", "trigger", "x", "--conf", "{not json"],
        ["dags", "trigger", "x", "--conf", "NaN"],
        ["functions", "invoke", "f", "--conf", "[1,"],
        ["functions", "invoke", "f", "--data", "{}"],  # the old name: --conf, as trigger
        ["runs", "show", "not-a-number"],
        ["runs", "mark", "1", "a", "maybe"],
        ["prune", "--older-than", "soon"],
        ["token", "create", "--role", "root"],
        ["deploy", "functions", "--local", "--url", "http://example.com"],
    ],
)
def test_a_usage_error_is_one_line_naming_the_help_and_exits_2(args, capsys):
    with pytest.raises(SystemExit) as exited:
        brisa_cli.main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and err.endswith(" --help)\n")
    assert "Traceback" not in err


def test_no_command_names_the_commands(capsys):
    with pytest.raises(SystemExit):
        brisa_cli.main(["runs"])
    err = capsys.readouterr().err
    assert err.startswith("error: a command is needed: one of list, show, logs")


def test_an_unreachable_server_is_named(monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("BRISA_URL", url)
    assert brisa_cli.main(["dags", "list"]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot reach Brisa at {url}: Connection refused "
        "(is it running? `make run` starts one)\n"
    )


def test_the_default_address_is_the_local_port(monkeypatch):
    from app.cli.client import default_url

    monkeypatch.delenv("BRISA_URL", raising=False)
    monkeypatch.setenv("PORT", "8123")
    assert default_url() == "http://127.0.0.1:8123"
    monkeypatch.delenv("PORT")
    assert default_url() == "http://127.0.0.1:8000"


def test_a_broken_dag_file_fails_before_any_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRISA_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    path = tmp_path / "broken.py"
    path.write_text("from app.cli.authoring import DAG\n\nwith DAG('x'):\n    undefined >> 1\n")
    assert brisa_cli.main(["deploy", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: line 4: NameError" in err and "cannot reach" not in err
    assert brisa_cli.main(["deploy", str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def bad_paths(tmp_path: Path) -> dict:
    """A path to deploy for each way a file or folder can be wrong -> what the error says."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "latin1.py").write_bytes(b"# caf\xe9\ndef handler(event, context):\n    pass\n")
    (tmp_path / "spec.json").write_text('{"dag_id": "x", "tasks": [}')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "opts").mkdir()
    (tmp_path / "opts" / "f.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "opts" / "f.requirements.txt").write_text("--index-url http://x\n")
    return {
        tmp_path / "missing": "no such file or folder",
        tmp_path / "empty": "nothing to deploy in",
        tmp_path / "notes.txt": "deploy takes .py and .json files",
        tmp_path / "latin1.py": "cannot be read: not UTF-8 text",
        tmp_path / "spec.json": "malformed JSON",
        tmp_path / "list.json": "a DAG spec is a JSON object with a dag_id",
        tmp_path / "opts": "pip options (--index-url) are not supported",
    }


@pytest.mark.parametrize("local", [False, True], ids=["http", "local"])
def test_a_bad_path_to_deploy_is_one_line_before_any_request(tmp_path, monkeypatch, capsys, local):
    monkeypatch.setenv("BRISA_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv("BRISA_VAR_DIR", str(tmp_path / "var"))  # no database either
    for path, reason in bad_paths(tmp_path).items():
        assert brisa_cli.main(["deploy", str(path)] + ["--local"] * local) == 1, path
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and reason in err, err
    assert not (tmp_path / "var").exists()


def deployed_versions(client, admin) -> dict:
    """{name or dag_id: version} of what the database holds, read through the API."""
    functions = client.get("/api/v1/functions", headers=admin).get_json()["functions"]
    dags = client.get("/api/v1/dags", headers=admin).get_json()["dags"]
    return {f["name"]: f["version"] for f in functions} | {d["dag_id"]: d["version"] for d in dags}


def test_deploy_local_writes_the_database_and_a_second_time_changes_nothing(backend, client, admin):
    env_without_http = {"BRISA_URL": f"http://127.0.0.1:{free_port()}", "BRISA_TOKEN": ""}
    backend.env.update(env_without_http)  # nobody listens there, and no token: not needed

    dry = cli(backend, "deploy", "--local", str(FUNCTIONS_DIR), "--dry-run").stdout
    assert "+ example_taskflow.fetch" in dry and "+ example_pipeline" in dry
    assert dry.endswith("to deploy, 0 unchanged (dry run: nothing deployed)\n")
    assert deployed_versions(client, admin) == {}

    first = cli(backend, "deploy", "--local", str(FUNCTIONS_DIR)).stdout
    assert "deployed function hello v1" in first and "deployed dag example_taskflow v1" in first
    after_first = deployed_versions(client, admin)
    assert {"hello", "example_taskflow.report", "example_pipeline", "example_taskflow"} <= set(
        after_first
    )
    assert set(after_first.values()) == {1}

    second = cli(backend, "deploy", "--local", str(FUNCTIONS_DIR)).stdout
    assert "0 to deploy" in second and "deployed" not in second
    assert "= example_taskflow.report" in second
    assert deployed_versions(client, admin) == after_first

    audit = client.get("/api/v1/audit", headers=admin).get_json()["events"]
    assert {event["actor"] for event in audit} == {"cli: deploy --local"}
    assert len(audit) == len(after_first)  # one event per change, none for the second deploy


def test_deploy_local_dry_run_shows_a_change_and_applies_nothing(backend, client, admin, tmp_path):
    cli(backend, "deploy", "--local", str(FUNCTIONS_DIR))
    folder = edited_examples(tmp_path / "functions")
    before = deployed_versions(client, admin)

    plan = cli(backend, "deploy", "--local", str(folder), "--dry-run", "--json").stdout
    changed = {
        s["name"]: s["fields"] for s in json.loads(plan)["plan"] if s["status"] != "unchanged"
    }
    assert changed == {"hello": ["source"], "example_pipeline": ["schedule"]}
    assert deployed_versions(client, admin) == before

    applied = cli(backend, "deploy", "--local", str(folder)).stdout
    assert "deployed function hello v2" in applied and "deployed dag example_pipeline v2" in applied
    assert deployed_versions(client, admin) == {**before, "hello": 2, "example_pipeline": 2}


def test_deploy_local_needs_a_migrated_database_and_no_http_options(tmp_path):
    env = {**os.environ, "BRISA_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}
    for key in ("DATABASE_URL", "REDIS_URL", "REDIS_TLS_URL"):
        env.pop(key, None)
    args = [sys.executable, "-m", "app", "deploy", "--local", str(FUNCTIONS_DIR)]
    fresh = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert fresh.returncode == 1 and "run `python -m app migrate`" in fresh.stderr
    both = subprocess.run(
        [*args, "--url", "http://example.com"], env=env, capture_output=True, text=True, timeout=60
    )
    assert both.returncode == 2 and "--url and --token are for HTTP" in both.stderr


# The local commands' failures: each one line, the right exit code, nothing left behind ---

LOCAL_COMMANDS = [
    ["token", "list"],
    ["token", "create", "--role", "admin"],
    ["token", "revoke", "1"],
    ["prune", "--older-than", "30d"],
    ["deploy", "--local", str(FUNCTIONS_DIR)],
    ["deploy", "--local", str(FUNCTIONS_DIR), "--dry-run"],
]


def command_id(args) -> str:
    return " ".join(word for word in args if not word.startswith("/"))


def brisa(env_changes: dict, *args):
    """``python -m app ARGS`` with none of this process's Brisa settings but ``env_changes``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRISA_", "DATABASE_U"))}
    env = {k: v for k, v in env.items() if k not in ("REDIS_URL", "REDIS_TLS_URL", "PORT")}
    env.update(PYTHONPATH=str(ROOT), **env_changes)
    return subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=60
    )


def assert_one_line(done, exit_code: int, *phrases: str) -> None:
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    for phrase in phrases:
        assert phrase in done.stderr


@pytest.mark.parametrize("args", LOCAL_COMMANDS, ids=command_id)
def test_without_a_database_a_local_command_says_migrate_and_creates_nothing(args, tmp_path):
    var = tmp_path / "var"
    done = brisa({"BRISA_VAR_DIR": str(var)}, *args)
    assert_one_line(done, 1, f"no database at {var / 'brisa.db'}", "run `python -m app migrate`")
    assert not var.exists()


@pytest.mark.parametrize("backend_name", ["embedded", "postgres"])
@pytest.mark.parametrize("args", LOCAL_COMMANDS, ids=command_id)
def test_on_an_unmigrated_database_a_local_command_says_migrate(args, backend_name, tmp_path):
    var = tmp_path / "var"
    env = backend_env(backend_name, var)
    if backend_name == "postgres":
        require_postgres()
        reset_postgres(POSTGRES_URL)  # a database with no tables
    else:
        var.mkdir()
        sqlite3.connect(var / "brisa.db").close()  # a file with no tables
    done = brisa(env, *args)
    assert_one_line(done, 1, "has no schema", "run `python -m app migrate`")


def test_a_schema_newer_than_the_code_says_upgrade(tmp_path):
    env = {"BRISA_VAR_DIR": str(tmp_path / "var")}
    assert brisa(env, "migrate").returncode == 0
    with closing(sqlite3.connect(tmp_path / "var" / "brisa.db")) as database, database:
        database.execute("UPDATE schema_version SET version = version + 1")
    done = brisa(env, "token", "list")
    assert_one_line(done, 1, f"newer than this Brisa's {migrations.LATEST}: upgrade Brisa")


@pytest.mark.parametrize("args", [["migrate"], *LOCAL_COMMANDS], ids=command_id)
def test_an_unreachable_postgres_is_one_line_without_its_password(args, tmp_path):
    url = f"postgresql://brisa:s3cret@127.0.0.1:{free_port()}/brisa"
    done = brisa({"DATABASE_URL": url, "BRISA_VAR_DIR": str(tmp_path / "var")}, *args)
    assert_one_line(done, 1, "cannot open the database at postgresql://brisa:***@127.0.0.1:")
    assert "Connection refused" in done.stderr and "s3cret" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DATABASE_URL", "mysql://db/brisa", "DATABASE_URL must be postgres://"),
        ("PORT", "eighty", "PORT='eighty'"),
        ("BRISA_DEFAULT_TIMEOUT", "soon", "BRISA_DEFAULT_TIMEOUT='soon': expected a number"),
    ],
)
@pytest.mark.parametrize("args", [["migrate"], ["token", "list"]], ids=command_id)
def test_a_setting_that_does_not_parse_is_a_usage_error(args, variable, value, says, tmp_path):
    done = brisa({variable: value, "BRISA_VAR_DIR": str(tmp_path / "var")}, *args)
    assert_one_line(done, 2, says)
    assert not (tmp_path / "var").exists()


def test_a_remote_command_with_a_bad_address_is_a_usage_error():
    for env, says in [
        ({"BRISA_URL": "localhost:8000"}, "BRISA_URL: 'localhost:8000' is not an http://"),
        ({"PORT": "eighty"}, "PORT: 'http://127.0.0.1:eighty' is not an http://"),
    ]:
        assert_one_line(brisa(env, "dags", "list"), 2, says)
