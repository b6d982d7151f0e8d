"""A run's end wakes its waiters by a notice on Redis, not by polls (#18): published after the
commit that ended the run, only to waiters of that deployment's run."""

import pytest

from app import broker
from app.store import outbox, transitions
from app.store.db import db
from app.store.models import DagRun
from tests.conftest import deploy_source, poll

NO_POLL = 3600.0  # a watch that fell back to polling would not look again within the test


ON_REDIS = pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # SQLite: polls


@pytest.fixture
def notices(backend):
    broker.install()
    notices = broker.run_ends()
    notices._start()
    poll(notices.subscribed.is_set, what="the run-end subscription")
    return notices


def a_running_run(client, admin) -> int:
    deploy_source(client, admin, "ok", "def handler(event, context):\n    return 'ok'\n")
    run_id = client.post("/api/v1/functions/ok/invoke", json={}, headers=admin).get_json()
    with db.connection_context():
        assert DagRun.get_by_id(run_id["run_id"]).state == "running"
    return run_id["run_id"]


@ON_REDIS
def test_the_end_of_a_run_wakes_its_waiter_after_the_commit(notices, client, admin):
    run_id = a_running_run(client, admin)
    watch = outbox.get_transport().watch_run(run_id, NO_POLL)
    try:
        with db.connection_context(), db.atomic():
            assert transitions.finish_run(run_id, transitions.RunState.SUCCESS)
            assert not watch.wait(0.2), "the notice left before the commit"
        assert watch.wait(30), "no notice came after the commit"
    finally:
        watch.close()


@ON_REDIS
def test_another_deployments_run_of_the_same_id_wakes_nobody(notices, client, admin):
    run_id = a_running_run(client, admin)
    watch = outbox.get_transport().watch_run(run_id, NO_POLL)
    try:
        notices.client.publish(broker.RUN_ENDS_CHANNEL, f"another-deployment:{run_id}")
        assert not watch.wait(0.3)
        notices.publish(run_id)
        assert watch.wait(30)
    finally:
        watch.close()
    assert notices.waiters == {}, "a closed watch is forgotten"


def test_invoke_wait_answers_with_the_result(backend, consumer, client, admin):
    deploy_source(client, admin, "ok", "def handler(event, context):\n    return 'ok'\n")
    for _ in range(3):  # the first waits while the subscription comes up, the others on it
        answer = client.post("/api/v1/functions/ok/invoke?wait=30", json={}, headers=admin)
        assert (answer.status_code, answer.get_json()["result"]) == (200, "ok")
