"""Dispatch without a worker, on every backend: tries are finished by their transitions, then
app/engine/dispatch.py decides the successors and the run, as a worker would right after its
commit. Fast: no consumer, no function runs."""

import pytest

from app.domain.timeutil import isoformat
from app.engine import dispatch
from app.store import transitions as states
from app.store.db import db
from app.store.models import DagRun, TaskInstance
from tests.conftest import deploy_source

OK = "def handler(event, context):\n    return 'ok'\n"


@pytest.fixture
def dag(client, admin):
    """Deploys function ``f`` and returns put(dag_id, tasks, **spec) -> trigger() -> run id."""
    deploy_source(client, admin, "f", OK)
    deploy_source(client, admin, "notify", OK)

    def put(dag_id: str, tasks: list[dict], **spec):
        body = {"dag_id": dag_id, "tasks": tasks, **spec}
        assert client.put(f"/api/v1/dags/{dag_id}", json=body, headers=admin).status_code == 201

        def trigger() -> int:
            response = client.post(f"/api/v1/dags/{dag_id}/runs", headers=admin)
            assert response.status_code == 201, response.get_json()
            return response.get_json()["run_id"]

        return trigger

    return put


def task(task_id: str, upstream=(), **fields) -> dict:
    return {"task_id": task_id, "function": "f", "upstream": list(upstream), **fields}


def ti_of(run_id: int, task_id: str) -> TaskInstance:
    return TaskInstance.get((TaskInstance.run == run_id) & (TaskInstance.task_id == task_id))


def finish(run_id: int, task_id: str, ok: bool = True) -> None:
    """Claim the queued task's try, end it, and dispatch, as the worker does."""
    with db.connection_context():
        ti = ti_of(run_id, task_id)
        assert states.claim(ti.id, ti.try_number, "worker:1")
        if ok:
            assert states.succeed(ti.id, ti.try_number, "ok")
        else:
            assert states.fail(ti.id, ti.try_number, ti.max_tries, "bad", 0) == "failed"
        known = {task_id: "success" if ok else "failed"}
        dispatch.task_finished(run_id, ti.downstream, known=known)


def states_of(run_id: int) -> dict[str, str]:
    with db.connection_context():
        rows = TaskInstance.select().where(TaskInstance.run == run_id)
        return {ti.task_id: ti.state for ti in rows}


def run_of(run_id: int) -> DagRun:
    with db.connection_context():
        return DagRun.get_by_id(run_id)


# The finisher's own state is known: the others' (width - 1) are read, by id up to
# LONG_IN_LIST of them, past it as the whole run's.
WIDE = [dispatch.LONG_IN_LIST + 1, dispatch.LONG_IN_LIST + 2]


@pytest.mark.parametrize("width", WIDE)
def test_a_join_waits_for_every_upstream_of_a_wide_fan_in(dag, width):
    parts = [task(f"p{i}") for i in range(width)]
    trigger = dag("wide", [*parts, task("join", [p["task_id"] for p in parts])])
    run_id = trigger()
    for part in parts[:-1]:
        finish(run_id, part["task_id"])
    assert states_of(run_id)["join"] == "none"
    finish(run_id, parts[-1]["task_id"])
    assert states_of(run_id)["join"] == "queued"


@pytest.mark.parametrize("width", [2, *WIDE])
def test_upstream_states_are_read_from_the_same_run_only(dag, width):
    """A later run of the same DAG, its tasks still waiting, does not hold back this one."""
    parts = [task(f"p{i}") for i in range(width)]
    trigger = dag("twice", [*parts, task("join", [p["task_id"] for p in parts])])
    first, second = trigger(), trigger()
    for part in parts:
        finish(first, part["task_id"])
    assert states_of(first)["join"] == "queued"
    assert set(states_of(second).values()) == {"queued", "none"}


def test_on_failure_calls_back_with_the_run_summary(dag):
    tasks = [task("load"), task("after", ["load"]), task("other")]  # by id, not by name
    run_id = dag("alerting", tasks, on_failure="notify", on_success="f")()
    finish(run_id, "load", ok=False)
    finish(run_id, "other")
    failed = run_of(run_id)
    assert failed.state == "failed"
    with db.connection_context():
        (callback,) = DagRun.select().where(DagRun.run_type == "callback")
        callback_task = TaskInstance.get(TaskInstance.run == callback.id)
    assert callback.conf == {
        "dag_id": "alerting",
        "run_id": run_id,
        "state": "failed",
        "run_type": "manual",
        "logical_date": isoformat(failed.logical_date),
        "failed_tasks": ["load", "after"],
        "url": f"/api/v1/runs/{run_id}",
    }
    assert (callback.state, callback_task.task_id, callback_task.state) == (
        "running",
        "notify",
        "queued",
    )


def test_on_success_calls_back_and_a_cancelled_run_does_not(dag):
    trigger = dag("cheerful", [task("a")], on_success="notify", on_failure="f")
    succeeded, cancelled = trigger(), trigger()
    finish(succeeded, "a")
    with db.connection_context():
        assert states.cancel_run(cancelled)
        dispatch.run_finished(cancelled)
        callbacks = list(DagRun.select().where(DagRun.run_type == "callback"))
    assert [(c.conf["run_id"], c.conf["state"], c.conf["failed_tasks"]) for c in callbacks] == [
        (succeeded, "success", [])
    ]
    assert [ti.task_id for ti in callbacks[0].task_instances] == ["notify"]


def test_a_branch_skips_in_its_own_commit_so_a_racing_upstream_never_queues_the_skipped(
    dag, monkeypatch
):
    """choose branches to left; right has upstreams choose and other. Another upstream (other)
    finishing right after choose's commit, before choose dispatched, found right ready and
    queued it (right ran instead of staying skipped: seen in CI on Postgres). The skip is now
    part of choose's commit."""
    from app.domain.outcomes import Outcome
    from app.engine import outcomes

    trigger = dag(
        "branchy",
        [
            task("choose"),
            task("other"),
            task("left", ["choose"]),
            task("right", ["choose", "other"]),
        ],
    )
    run_id = trigger()
    with db.connection_context():
        other = ti_of(run_id, "other")
        assert states.claim(other.id, other.try_number, "worker:2")
        assert states.succeed(other.id, other.try_number, "ok")
        choose = ti_of(run_id, "choose")
        assert states.claim(choose.id, choose.try_number, "worker:1")
        choose = ti_of(run_id, "choose")
    real_task_finished = dispatch.task_finished

    def other_dispatches_first(*args, **kwargs):  # the racing finisher, between commit and dispatch
        dispatch.evaluate(run_id, ["right"], {"other": "success"})
        return real_task_finished(*args, **kwargs)

    monkeypatch.setattr(dispatch, "task_finished", other_dispatches_first)
    with db.connection_context():
        outcomes.record_outcome(choose, choose.try_number, Outcome(True, "left", branch=("left",)))
        right = ti_of(run_id, "right")
    assert (right.state, right.try_number) == ("skipped", 0)
    assert right.error == "not chosen by the branch of 'choose'"
    assert states_of(run_id)["left"] == "queued"
