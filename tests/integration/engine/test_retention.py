"""Pruning old runs, with everything that hangs off them, on every backend."""

import json
from datetime import timedelta

import pytest

from app.domain.timeutil import utcnow
from app.engine import retention
from app.store.db import db
from app.store.models import DagRun, TaskInstance, TaskLog, TaskTry
from tests.conftest import deploy_examples, wait_for_run
from tests.integration.cli.test_cli import cli


def finished_runs(client, admin, consumer, count: int) -> list[int]:
    deploy_examples(client, admin)
    ids = [
        client.post("/api/v1/dags/example_pipeline/runs", headers=admin).get_json()["run_id"]
        for _ in range(count)
    ]
    assert all(wait_for_run(run_id).state == "success" for run_id in ids)
    return ids


def age(run_ids, days: int) -> None:
    with db.connection_context():
        old = utcnow() - timedelta(days=days)
        DagRun.update(finished_at=old).where(DagRun.id.in_(run_ids)).execute()


def test_prune_deletes_old_finished_runs_in_batches_with_their_logs(client, admin, consumer):
    run_ids = finished_runs(client, admin, consumer, 5)
    age(run_ids[:3], days=40)
    with db.connection_context():
        assert retention.prune(timedelta(days=30), utcnow(), batch=2) == 3
        remaining = [run.id for run in DagRun.select().order_by(DagRun.id)]
        assert remaining == run_ids[3:]
        orphans = TaskInstance.select().where(TaskInstance.run.in_(run_ids[:3])).count()
        assert orphans == 0
        assert (
            TaskLog.select().join(TaskInstance).where(TaskInstance.run.in_(run_ids[:3])).count()
            == 0
        )
        assert TaskTry.select().count() == 2 * 4


def test_prune_keeps_runs_still_going(client, admin):
    deploy_examples(client, admin)
    run_id = client.post("/api/v1/dags/example_pipeline/runs", headers=admin).get_json()["run_id"]
    with db.connection_context():
        DagRun.update(created_at=utcnow() - timedelta(days=90)).where(DagRun.id == run_id).execute()
        assert retention.prune(timedelta(days=1), utcnow()) == 0


def test_prune_from_the_cli(backend, client, admin, consumer):
    run_ids = finished_runs(client, admin, consumer, 2)
    age(run_ids, days=10)
    assert json.loads(cli(backend, "prune", "--older-than", "7d").stdout) == {"deleted": 2}
    assert cli(backend, "prune", "--older-than", "soon", check=False).returncode == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))],
)
def test_ages(text, expected):
    assert retention.parse_age(text) == expected
