"""``python -m app`` as a user runs it, against each backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FUNCTIONS_DIR, wait_for_run

ROOT = Path(__file__).resolve().parents[2]


def cli(backend, *args, check=True):
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


def test_token_create_prints_only_a_working_token(backend, client):
    token = cli(backend, "token", "create", "--role", "viewer").stdout
    assert token.count("\n") == 1 and token.startswith("brisa_")
    headers = {"Authorization": f"Bearer {token.strip()}"}
    assert client.get("/api/v1/dags", headers=headers).status_code == 200
    assert client.post("/api/v1/dags", json={}, headers=headers).status_code == 403


def test_deploy_a_folder_then_trigger(backend, consumer):
    lines = cli(backend, "deploy", str(FUNCTIONS_DIR)).stdout.splitlines()
    assert "function hello v1" in lines and "dag example_pipeline v1" in lines
    again = cli(backend, "deploy", str(FUNCTIONS_DIR)).stdout
    assert "function hello v1 (unchanged)" in again
    out = cli(backend, "trigger", "example_pipeline", "--conf", '{"name": "cli"}').stdout
    run = json.loads(out)
    assert wait_for_run(run["run_id"]).state == "success"


def test_deploy_reports_an_invalid_file_and_exits_non_zero(backend, tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("def handler(event, context)\n")
    done = cli(backend, "deploy", str(bad), check=False)
    assert done.returncode == 1
    assert "SyntaxError" in done.stderr


def test_trigger_of_an_unknown_dag_fails_clearly(backend):
    done = cli(backend, "trigger", "nope", check=False)
    assert done.returncode == 1
    assert "no DAG 'nope'" in done.stderr


def test_operations_from_the_cli(backend, client, admin, consumer):
    from tests.conftest import deploy_source

    deploy_source(client, admin, "bad", "def handler(e, c):\n    raise ValueError('no')\n")
    deploy_source(client, admin, "ok", "def handler(e, c):\n    return 1\n")
    spec = {
        "dag_id": "ops",
        "schedule": "0 * * * *",
        "start_date": "2026-01-01T00:00:00Z",
        "tasks": [
            {"task_id": "a", "function": "bad"},
            {"task_id": "b", "function": "ok", "upstream": ["a"]},
        ],
    }
    assert client.post("/api/v1/dags", json=spec, headers=admin).status_code == 201
    assert json.loads(cli(backend, "pause", "ops").stdout) == {"dag_id": "ops", "paused": True}
    assert json.loads(cli(backend, "unpause", "ops").stdout)["paused"] is False

    out = cli(
        backend,
        "backfill",
        "ops",
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "2026-01-01T02:00:00Z",
    )
    backfilled = json.loads(out.stdout)
    assert backfilled["created"] == 3
    run_id = backfilled["run_ids"][0]
    assert wait_for_run(run_id).state == "failed"

    marked = json.loads(cli(backend, "mark", str(run_id), "a", "success").stdout)
    assert marked == {"task_id": "a", "state": "success"}
    cleared = json.loads(cli(backend, "clear", str(run_id), "b").stdout)
    assert cleared == {"cleared": ["b"]}
    assert wait_for_run(run_id).state == "success"

    other = backfilled["run_ids"][1]
    assert wait_for_run(other).state == "failed"
    assert json.loads(cli(backend, "rerun", str(other)).stdout) == {"cleared": ["a", "b"]}
    wait_for_run(other)
    done = cli(backend, "cancel", str(other), check=False)
    assert done.returncode == 1 and "only a queued or running run" in done.stderr
