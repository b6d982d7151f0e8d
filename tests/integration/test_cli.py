"""``python -m app``: the operator commands on each backend's database, and what every
command does before it talks to a server (help, usage errors, local file problems). The
commands that talk HTTP run against a live system in tests/e2e/test_cli.py."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli as brisa_cli
from tests.system import free_port

ROOT = Path(__file__).resolve().parents[2]


def cli(backend, *args, check=True):
    """``python -m app ARGS`` on the backend's database (tests/integration/test_retention.py
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
    from app.client import default_url

    monkeypatch.delenv("BRISA_URL", raising=False)
    monkeypatch.setenv("PORT", "8123")
    assert default_url() == "http://127.0.0.1:8123"
    monkeypatch.delenv("PORT")
    assert default_url() == "http://127.0.0.1:8000"


def test_a_broken_dag_file_fails_before_any_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRISA_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    path = tmp_path / "broken.py"
    path.write_text("from app.authoring import DAG\n\nwith DAG('x'):\n    undefined >> 1\n")
    assert brisa_cli.main(["deploy", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: line 4: NameError" in err and "cannot reach" not in err
    assert brisa_cli.main(["deploy", str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
