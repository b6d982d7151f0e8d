"""The clock's tick recovers what the queue lost, on every backend."""

from datetime import timedelta

from app import broker
from app.clock import periodic as clock
from app.domain.timeutil import utcnow
from app.store.db import db
from app.store.models import Metric, TaskInstance
from tests.conftest import deploy_source, wait_for_run

SOURCE = "def handler(event, context):\n    return 'ran'\n"


def make_run(client, admin, task=None) -> int:
    deploy_source(client, admin, "f", SOURCE)
    spec = {"dag_id": "d", "tasks": [task or {"task_id": "t", "function": "f"}]}
    assert client.post("/api/v1/dags", json=spec, headers=admin).status_code == 201
    return client.post("/api/v1/dags/d/runs", headers=admin).get_json()["run_id"]


def test_a_queued_task_whose_message_was_lost_is_enqueued_again(client, admin, backend):
    make_run(client, admin)
    broker.huey.flush()  # Redis flushed, or a worker died holding the message
    assert broker.huey.pending_count() == 0
    with db.connection_context():
        fresh = clock.tick(utcnow(), queued_timeout_s=60)
        assert fresh["requeued"] == 0  # queued just now: not lost yet
        later = clock.tick(utcnow() + timedelta(seconds=61), queued_timeout_s=60)
    assert later["requeued"] == 1
    assert broker.huey.pending_count() == 1


def test_the_requeued_message_runs_the_task(client, admin, backend, request):
    run_id = make_run(client, admin)
    broker.huey.flush()
    with db.connection_context():
        clock.tick(utcnow() + timedelta(seconds=61), queued_timeout_s=60)
    request.getfixturevalue("consumer")
    assert wait_for_run(run_id).state == "success"


def test_a_retry_whose_message_was_lost_is_released_when_due(client, admin, backend):
    run_id = make_run(client, admin)
    broker.huey.flush()
    with db.connection_context():
        TaskInstance.update(
            state="up_for_retry", next_try_at=utcnow() + timedelta(seconds=30)
        ).where(TaskInstance.run == run_id).execute()
        assert clock.tick(utcnow(), 60)["retries_released"] == 0
        assert clock.tick(utcnow() + timedelta(seconds=31), 60)["retries_released"] == 1
        ti = TaskInstance.get(TaskInstance.run == run_id)
    assert (ti.state, ti.try_number) == ("queued", 2)
    assert broker.huey.pending_count() == 1


def test_ticking_twice_at_once_requeues_once(client, admin, backend):
    make_run(client, admin)
    broker.huey.flush()
    later = utcnow() + timedelta(seconds=61)
    with db.connection_context():
        first = clock.tick(later, 60)["requeued"]
        second = clock.tick(later, 60)["requeued"]
    assert (first, second) == (1, 0)
    assert broker.huey.pending_count() == 1


def test_a_long_backlog_is_not_taken_for_a_loss(client, admin, backend):
    make_run(client, admin)  # its message still waits in the queue: no worker runs
    with db.connection_context():
        assert clock.tick(utcnow() + timedelta(seconds=61), 60)["requeued"] == 0
    assert broker.huey.pending_count() == 1


def test_a_try_past_a_thousand_doublings_is_reaped_not_overflowed(client, admin, backend):
    """The issue's example: retry_backoff on try 1025 computed base * 2**1024 and raised
    OverflowError, which then stopped every tick. Rows that predate the bound on retries
    (1000) still meet only bounded arithmetic."""
    run_id = make_run(client, admin)
    broker.huey.flush()
    with db.connection_context():
        TaskInstance.update(
            state="running",
            try_number=1025,
            max_tries=1101,
            retry_delay=0.001,
            retry_backoff=True,
            max_retry_delay=0.001,
            heartbeat_at=utcnow() - timedelta(seconds=120),
            worker="gone:1",
        ).where(TaskInstance.run == run_id).execute()
        counts = clock.tick(utcnow(), queued_timeout_s=60, heartbeat_timeout_s=30)
        ti = TaskInstance.get(TaskInstance.run == run_id)
    assert counts["reaped"] == 1
    assert (ti.state, ti.try_number) in {("up_for_retry", 1025), ("queued", 1026)}


def test_one_row_that_fails_is_skipped_logged_and_counted_and_the_tick_goes_on(
    client, admin, backend, monkeypatch, caplog
):
    first, second = (
        make_run(client, admin),
        client.post("/api/v1/dags/d/runs", headers=admin).get_json()["run_id"],
    )
    broker.huey.flush()
    with db.connection_context():
        TaskInstance.update(state="up_for_retry", next_try_at=utcnow()).execute()
        bad = TaskInstance.get(TaskInstance.run == first).id
        release = clock.dispatch.release_retry

        def release_or_break(ti_id, try_number, now):
            if ti_id == bad:
                raise ValueError("a row no sweep can handle")
            return release(ti_id, try_number, now)

        monkeypatch.setattr(clock.dispatch, "release_retry", release_or_break)
        counts = clock.tick(utcnow() + timedelta(seconds=1), 60)
        states = {ti.run_id: ti.state for ti in TaskInstance.select()}
        failed = Metric.get_or_none(Metric.name == "sweep_items_failed_total")
    assert counts["retries_released"] == 1
    assert states == {first: "up_for_retry", second: "queued"}
    assert failed is not None and failed.value == 1
    assert f"releasing due retries: TaskInstance {bad} failed" in caplog.text
    assert "a row no sweep can handle" in caplog.text
