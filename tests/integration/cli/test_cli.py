"""``python -m app``: the operator commands on each backend's database (deploy --local among
them), and what every command does before it talks to a server (help, usage errors, local
file problems). The commands that talk HTTP run against a live system in
tests/e2e/test_cli.py."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import commands as brisa_cli
from tests.conftest import FUNCTIONS_DIR, edited_examples
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
        ["runs", "show", "not-a-number"],
        ["runs", "mark", "1", "a", "maybe"],
        ["prune", "--older-than", "soon"],
    ],
)
def test_a_usage_error_exits_2(args, capsys):
    with pytest.raises(SystemExit) as exited:
        brisa_cli.main(args)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_an_unreachable_server_is_named(monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("BRISA_URL", url)
    assert brisa_cli.main(["dags", "list"]) == 1
    assert (
        capsys.readouterr().err
        == f"error: cannot reach Brisa at {url}: [Errno 111] Connection refused\n"
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
