"""Schedules through the clock's tick, catchup, pause and backfill, on every backend."""

from datetime import datetime, timedelta

import pytest

from app.clock import periodic as clock
from app.clock import scheduler
from app.store.db import db
from app.store.models import DagRun
from tests.conftest import deploy_source, wait_for_run

# Ticks are simulated at times after START, which is in the future: a DAG without catchup
# gets its owed run when it is created (at the real now), which must not be one of these.
START = "2030-01-01T00:00:00Z"
T0 = datetime(2030, 1, 1)
CONTEXT = (
    "def handler(event, context):\n"
    "    return [context.logical_date, context.data_interval_start, context.data_interval_end,\n"
    "            context.run_type]\n"
)


@pytest.fixture
def scheduled_dag(client, admin):
    deploy_source(client, admin, "ctx", CONTEXT)

    def make(dag_id="every10", **spec):
        body = {
            "dag_id": dag_id,
            "schedule": "*/10 * * * *",
            "start_date": START,
            "catchup": True,
            "tasks": [{"task_id": "t", "function": "ctx"}],
            **spec,
        }
        response = client.put(f"/api/v1/dags/{dag_id}", json=body, headers=admin)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def scheduled_runs(dag_id="every10") -> list[DagRun]:
    with db.connection_context():
        query = (
            DagRun.select()
            .join_from(DagRun, DagRun.dag.rel_model)
            .where(DagRun.dag.rel_model.dag_id == dag_id)
        )
        return sorted(query, key=lambda r: r.logical_date)


def tick(now: datetime) -> dict:
    with db.connection_context():
        return clock.tick(now, 60)


def test_a_new_dag_is_due_from_its_start_date(scheduled_dag):
    assert scheduled_dag()["next_run_at"] == "2030-01-01T00:00:00.000Z"


def test_catchup_creates_every_missed_run_oldest_first_exactly_once(scheduled_dag):
    scheduled_dag(max_active_runs=100)
    assert tick(T0 + timedelta(hours=1, minutes=5))["runs_created"] == 7
    assert tick(T0 + timedelta(hours=1, minutes=5))["runs_created"] == 0
    runs = scheduled_runs()
    assert [r.logical_date for r in runs] == [T0 + timedelta(minutes=10 * i) for i in range(7)]
    assert {r.run_type for r in runs} == {"scheduled"}
    second = runs[1]
    assert (second.data_interval_start, second.data_interval_end) == (
        T0,
        T0 + timedelta(minutes=10),
    )


def test_catchup_off_creates_only_the_latest_due_run(scheduled_dag):
    scheduled_dag(catchup=False)
    assert tick(T0 + timedelta(hours=5, minutes=3))["runs_created"] == 1
    assert [r.logical_date for r in scheduled_runs()] == [T0 + timedelta(hours=5)]


def test_max_active_runs_keeps_caught_up_runs_queued(scheduled_dag):
    scheduled_dag(max_active_runs=2)
    tick(T0 + timedelta(minutes=45))
    runs = scheduled_runs()
    assert [r.state for r in runs] == ["running", "running", "queued", "queued", "queued"]


def test_a_paused_dag_creates_no_runs_and_unpausing_does_not_flood(client, admin, scheduled_dag):
    scheduled_dag(catchup=False)
    client.patch("/api/v1/dags/every10", json={"paused": True}, headers=admin)
    assert tick(T0 + timedelta(days=3))["runs_created"] == 0
    client.patch("/api/v1/dags/every10", json={"paused": False}, headers=admin)
    assert tick(T0 + timedelta(days=7, minutes=1))["runs_created"] == 1
    assert [r.logical_date for r in scheduled_runs()] == [T0 + timedelta(days=7)]


def test_a_run_falling_due_before_the_next_tick_is_sent_with_its_eta(scheduled_dag):
    scheduled_dag(catchup=False)
    now = T0 + timedelta(minutes=9, seconds=30)
    assert tick(now)["runs_created"] == 1  # the 00:00 run
    scheduled = clock.huey.pending()  # a consumer moves it to its schedule until the ETA
    assert [(t.name, t.args) for t in scheduled] == [
        ("create_run_at", ("every10", "2030-01-01T00:10:00"))
    ]
    assert scheduled[0].eta.replace(tzinfo=None) == T0 + timedelta(minutes=10)
    with db.connection_context():
        assert scheduler.create_due_run("every10", T0 + timedelta(minutes=10))
        assert not scheduler.create_due_run("every10", T0 + timedelta(minutes=10))  # once
        assert not scheduler.create_due_run("every10", T0 + timedelta(minutes=11))  # not due
    assert [r.logical_date for r in scheduled_runs()][-1] == T0 + timedelta(minutes=10)


def test_the_function_sees_its_logical_date_and_data_interval(scheduled_dag, consumer):
    scheduled_dag(catchup=False)
    tick(T0 + timedelta(minutes=25))
    (run,) = scheduled_runs()
    assert wait_for_run(run.id).state == "success"
    from app.store.models import TaskInstance

    with db.connection_context():
        result = TaskInstance.get(TaskInstance.run == run.id).result
    assert result == [
        "2030-01-01T00:20:00.000Z",
        "2030-01-01T00:10:00.000Z",
        "2030-01-01T00:20:00.000Z",
        "scheduled",
    ]


def test_backfill_creates_a_run_per_due_time_once(client, admin, scheduled_dag):
    scheduled_dag(catchup=False, start_date="2030-06-01T00:00:00Z", max_active_runs=50)
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:30:00Z"}
    response = client.post("/api/v1/dags/every10/backfill", json=body, headers=admin)
    assert response.status_code == 201
    assert response.get_json()["created"] == 4
    assert {r["run_type"] for r in response.get_json()["runs"]} == {"backfill"}
    again = client.post("/api/v1/dags/every10/backfill", json=body, headers=admin)
    assert again.get_json()["created"] == 0
    assert len(scheduled_runs()) == 4


@pytest.mark.parametrize(
    "body",
    [
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "yesterday", "end": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-01T00:00:00Z"},
    ],
)
def test_a_bad_backfill_range_is_422(client, admin, scheduled_dag, body):
    scheduled_dag()
    response = client.post("/api/v1/dags/every10/backfill", json=body, headers=admin)
    assert response.status_code == 422


def test_backfill_of_an_unscheduled_dag_is_422(client, admin):
    deploy_source(client, admin, "ctx", CONTEXT)
    spec = {"dag_id": "manual", "tasks": [{"task_id": "t", "function": "ctx"}]}
    client.post("/api/v1/dags", json=spec, headers=admin)
    body = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    assert client.post("/api/v1/dags/manual/backfill", json=body, headers=admin).status_code == 422


def test_an_once_dag_runs_once_at_its_creation(client, admin):
    deploy_source(client, admin, "ctx", CONTEXT)
    spec = {"dag_id": "once", "schedule": "@once", "tasks": [{"task_id": "t", "function": "ctx"}]}
    created = client.post("/api/v1/dags", json=spec, headers=admin).get_json()
    assert len(scheduled_runs("once")) == 1  # made with the DAG, not a tick later
    assert created["next_run_at"] is None  # nothing more will ever be due
    later = datetime.fromisoformat(created["created_at"][:-1]) + timedelta(seconds=1)
    assert tick(later)["runs_created"] == 0
    assert tick(later + timedelta(days=1))["runs_created"] == 0
    assert len(scheduled_runs("once")) == 1


@pytest.mark.parametrize("change", ["create", "change", "unpause"])
def test_next_run_is_never_in_the_past_without_catchup(client, admin, change):
    """#15.14: @daily from 2026-01-01 without catchup showed next run 2026-01-01 00:00 until
    a tick: the owed run (the latest due time) is made at once and next_run_at is after now."""
    deploy_source(client, admin, "ctx", CONTEXT)
    spec = {"dag_id": "daily", "schedule": "@daily", "catchup": False, "tasks": []}
    spec["tasks"] = [{"task_id": "t", "function": "ctx"}]
    if change == "create":
        spec["start_date"] = "2026-01-01T00:00:00Z"
    response = client.put("/api/v1/dags/daily", json=spec, headers=admin)
    if change == "change":
        spec["start_date"] = "2026-01-01T00:00:00Z"
        response = client.put("/api/v1/dags/daily", json=spec, headers=admin)
    if change == "unpause":
        client.patch("/api/v1/dags/daily", json={"paused": True}, headers=admin)
        spec["start_date"] = "2026-01-01T00:00:00Z"
        client.put("/api/v1/dags/daily", json=spec, headers=admin)
        response = client.patch("/api/v1/dags/daily", json={"paused": False}, headers=admin)
    before = datetime.utcnow()  # noqa: DTZ003 - the store's naive UTC
    shown = client.get("/api/v1/dags/daily", headers=admin).get_json()["next_run_at"]
    assert response.status_code in (200, 201), response.get_json()
    midnight = before.replace(hour=0, minute=0, second=0, microsecond=0)
    assert datetime.fromisoformat(shown[:-1]) == midnight + timedelta(days=1)
    assert [r.logical_date for r in scheduled_runs("daily")] == [midnight]
    assert tick(before)["runs_created"] == 0  # the tick finds nothing more to do
