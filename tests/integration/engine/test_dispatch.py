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


# A wide fan-in's rule reads the distinct states of its upstreams in the database (the
# upstream list expanded there): each decision is the pure rule's on the whole list.
WIDE_RULE_CASES = [
    (rule, ending)
    for rule in ("all_success", "one_success", "one_failed", "none_failed", "all_done")
    for ending in ("all_ok", "one_failed_first", "one_failed_last")
]


@pytest.mark.parametrize(("rule", "ending"), WIDE_RULE_CASES)
def test_a_wide_fan_in_decides_as_its_trigger_rule_on_every_upstream(dag, rule, ending):
    from app.domain import trigger_rules

    width = WIDE[0]
    parts = [task(f"p{i:02d}") for i in range(width)]
    join = task("join", [p["task_id"] for p in parts], trigger_rule=rule)
    run_id = dag(f"wide_{rule}", [*parts, join])()
    failing = {"all_ok": None, "one_failed_first": 0, "one_failed_last": width - 1}[ending]
    seen: list[str] = []
    for index, part in enumerate(parts):
        ok = index != failing
        finish(run_id, part["task_id"], ok=ok)
        seen.append("success" if ok else "failed")
        expected = trigger_rules.evaluate(rule, seen + ["running"] * (width - len(seen)))
        after = {"ready": "queued", "wait": "none"}.get(expected, expected)
        assert states_of(run_id)["join"] == after, f"after {len(seen)} of {width}"
        if after != "none":
            break


def writes_and_transactions(monkeypatch) -> dict:
    """Counts, from now on, the transactions begun and the writing statements run outside
    one (each its own commit)."""
    counts = {"transactions": 0, "autocommitted_writes": 0}
    real_begin, real_execute = db.obj.begin, db.obj.execute_sql

    def begin(*args, **kwargs):
        counts["transactions"] += 1
        return real_begin(*args, **kwargs)

    def execute_sql(sql, *args, **kwargs):
        if db.obj.transaction_depth() == 0 and not sql.lstrip().upper().startswith("SELECT"):
            counts["autocommitted_writes"] += 1
        return real_execute(sql, *args, **kwargs)

    monkeypatch.setattr(db.obj, "begin", begin)
    monkeypatch.setattr(db.obj, "execute_sql", execute_sql)
    return counts


def test_a_chain_hands_off_in_the_finishing_tasks_own_commit(dag, monkeypatch):
    """A try's end, its history and the start of the successor that waits for it alone: one
    transaction and nothing committed beside it."""
    from app.domain.outcomes import Outcome
    from app.engine import outcomes

    run_id = dag("chain", [task("a"), task("b", ["a"]), task("c", ["b"])])()
    with db.connection_context():
        a = ti_of(run_id, "a")
        assert states.claim(a.id, a.try_number, "worker:1")
        a = ti_of(run_id, "a")
        counts = writes_and_transactions(monkeypatch)
        assert outcomes.record_outcome(a, a.try_number, Outcome(True, 1))
    assert counts == {"transactions": 1, "autocommitted_writes": 0}
    assert states_of(run_id) == {"a": "success", "b": "queued", "c": "none"}


def test_the_last_upstreams_of_a_fan_in_that_still_waits_only_read(dag, monkeypatch):
    """An upstream of a join that still waits for others begins no transaction to find so."""
    run_id = dag("fan_in", [task("p1"), task("p2"), task("join", ["p1", "p2"])])()
    counts = writes_and_transactions(monkeypatch)
    with db.connection_context():
        p1 = ti_of(run_id, "p1")
        dispatch.task_finished(run_id, p1.downstream, known={"p1": "success"})
    assert counts == {"transactions": 0, "autocommitted_writes": 0}
    finish(run_id, "p2")
    assert states_of(run_id)["join"] == "none"  # p1 was never claimed: still queued
