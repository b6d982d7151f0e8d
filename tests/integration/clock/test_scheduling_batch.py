"""The tick schedules every due DAG at once (app/clock/scheduling_batch.py), on every backend:
mixed DAGs in one tick, runs that exist already, max_active_runs, missing functions, and
two ticks racing."""

import threading
from datetime import datetime, timedelta

from app import broker
from app.clock import periodic as clock
from app.clock import scheduler
from app.clock.scheduling_batch import DueDag
from app.store.db import db
from app.store.models import Dag, DagRun, TaskInstance
from tests.conftest import deploy_source

# In the future: a DAG without catchup gets its owed run when it is created (at the real now);
# the ticks here are simulated after START.
T0 = datetime(2030, 1, 1)
START = "2030-01-01T00:00:00Z"
NOW = T0 + timedelta(hours=1, minutes=5)  # seven */10 due times: 00:00 ... 01:00
SOURCE = "def handler(event, context):\n    return {}\n"


def put_dag(client, admin, dag_id, tasks=None, **spec):
    body = {
        "dag_id": dag_id,
        "schedule": "*/10 * * * *",
        "start_date": START,
        "catchup": True,
        "tasks": tasks or [{"task_id": "t", "function": "f"}],
        **spec,
    }
    response = client.put(f"/api/v1/dags/{dag_id}", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()


def tick(now: datetime = NOW) -> int:
    with db.connection_context():
        return clock.tick(now, 60)["runs_created"]


def runs_of(dag_id: str) -> list[DagRun]:
    with db.connection_context():
        query = DagRun.select().join(Dag).where(Dag.dag_id == dag_id)
        return sorted(query, key=lambda run: (run.logical_date, run.id))


def tasks_of(run: DagRun) -> dict[str, TaskInstance]:
    with db.connection_context():
        return {ti.task_id: ti for ti in TaskInstance.select().where(TaskInstance.run == run.id)}


def next_run_at(dag_id: str) -> datetime | None:
    with db.connection_context():
        return Dag.get(Dag.dag_id == dag_id).next_run_at


def pending_tries() -> set[tuple]:
    return {
        tuple(message.args)
        for message in broker.huey.pending()
        if isinstance(message, broker.run_task_instance.task_class)
    }


def test_one_tick_schedules_many_mixed_dags(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    deploy_source(client, admin, "f", SOURCE + "# version 2\n")
    put_dag(client, admin, "catchup", max_active_runs=2)
    put_dag(client, admin, "latest_only", catchup=False)
    put_dag(client, admin, "paused")
    client.patch("/api/v1/dags/paused", json={"paused": True}, headers=admin)
    put_dag(
        client,
        admin,
        "pinned",
        catchup=False,
        tasks=[{"task_id": "t", "function": "f", "version": 1}],
    )
    fan_out = [
        {"task_id": "a", "function": "f"},
        {"task_id": "b", "function": "f", "upstream": ["a"]},
        {"task_id": "c", "function": "f", "upstream": ["a"]},
        {"task_id": "d", "function": "f", "upstream": ["b", "c"]},
    ]
    put_dag(client, admin, "fan_out", catchup=False, tasks=fan_out, max_active_tasks=3)

    assert tick() == 7 + 1 + 1 + 1

    caught_up = runs_of("catchup")
    assert [run.logical_date for run in caught_up] == [
        T0 + timedelta(minutes=10 * i) for i in range(7)
    ]
    assert [run.state for run in caught_up] == ["running"] * 2 + ["queued"] * 5
    assert (caught_up[3].data_interval_start, caught_up[3].data_interval_end) == (
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=30),
    )
    assert [run.logical_date for run in runs_of("latest_only")] == [T0 + timedelta(hours=1)]
    assert runs_of("paused") == []
    assert next_run_at("paused") == T0
    for dag_id in ("catchup", "latest_only", "pinned", "fan_out"):
        assert next_run_at(dag_id) == T0 + timedelta(hours=1, minutes=10)

    (pinned,) = runs_of("pinned")
    (latest,) = runs_of("latest_only")
    assert tasks_of(pinned)["t"].function_version.version == 1
    assert tasks_of(latest)["t"].function_version.version == 2

    (run,) = runs_of("fan_out")
    tasks = tasks_of(run)
    assert run.max_active_tasks == 3
    assert {t: (ti.state, ti.try_number) for t, ti in tasks.items()} == {
        "a": ("queued", 1),
        "b": ("none", 0),
        "c": ("none", 0),
        "d": ("none", 0),
    }
    assert (tasks["a"].downstream, tasks["d"].upstream) == (["b", "c"], ["b", "c"])

    started = [r for dag in ("catchup", "latest_only", "pinned", "fan_out") for r in runs_of(dag)]
    queued_tries = {
        (ti.id, ti.try_number)
        for r in started
        for ti in tasks_of(r).values()
        if ti.state == "queued"
    }
    assert len(queued_tries) == 2 + 1 + 1 + 1
    assert pending_tries() == queued_tries  # each enqueued once, after the commit


def test_a_run_that_exists_already_is_not_created_again(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    put_dag(client, admin, "every10", max_active_runs=50)
    body = {"start": "2030-01-01T00:20:00Z", "end": "2030-01-01T00:30:00Z"}
    backfill = client.post("/api/v1/dags/every10/backfill", json=body, headers=admin)
    assert backfill.get_json()["created"] == 2  # not counted as scheduled: still due
    assert tick() == 5
    assert tick() == 0
    runs = runs_of("every10")
    assert [run.logical_date for run in runs] == [T0 + timedelta(minutes=10 * i) for i in range(7)]
    assert [run.run_type for run in runs].count("backfill") == 2


def test_a_dag_at_max_active_runs_gets_its_run_queued_not_started(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    put_dag(client, admin, "one_at_a_time", catchup=False, max_active_runs=1)
    manual = client.post("/api/v1/dags/one_at_a_time/runs", headers=admin).get_json()
    assert manual["state"] == "running"
    assert tick() == 1
    scheduled = [run for run in runs_of("one_at_a_time") if run.run_type == "scheduled"]
    assert [run.state for run in scheduled] == ["queued"]
    assert {ti.state for ti in tasks_of(scheduled[0]).values()} == {"none"}


def test_a_dag_whose_function_version_is_missing_stays_due_and_the_others_run(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    put_dag(
        client,
        admin,
        "broken",
        catchup=False,
        tasks=[{"task_id": "t", "function": "f", "version": 9}],
    )
    put_dag(client, admin, "fine", catchup=False)
    assert tick() == 1
    assert runs_of("broken") == []
    assert next_run_at("broken") == T0  # tried again next tick
    assert len(runs_of("fine")) == 1


def test_two_ticks_racing_create_each_run_once(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    for i in range(20):
        put_dag(client, admin, f"dag{i:02d}", max_active_runs=3)
    created, barrier = [], threading.Barrier(2)

    def race():
        barrier.wait()
        created.append(tick())

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created) == 20 * 7
    for i in range(20):
        runs = runs_of(f"dag{i:02d}")
        assert [run.logical_date for run in runs] == [
            T0 + timedelta(minutes=10 * j) for j in range(7)
        ]
        assert [run.state for run in runs] == ["running"] * 3 + ["queued"] * 4


def test_dags_timed_alike_but_created_apart_are_planned_apart():
    spec = {
        "dag_id": "d",
        "schedule": "@hourly",
        "catchup": True,
        "tasks": [{"task_id": "t", "function": "f"}],
    }
    now, timings = T0 + timedelta(hours=5, minutes=30), {}
    early = DueDag(1, "early", T0, 1, spec, None)
    late = DueDag(2, "late", T0 + timedelta(hours=3), 2, spec, None)
    plans = [scheduler.plan(dag, now, timings) for dag in (early, late)]
    assert [len(plan.due) for plan in plans] == [6, 3]
    assert [plan.next_run_at for plan in plans] == [T0 + timedelta(hours=6)] * 2
