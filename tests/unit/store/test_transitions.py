"""State transitions: the allowed table, compare-and-set semantics, enqueue after commit."""

import itertools
import re
from datetime import timedelta
from pathlib import Path

import pytest

from app import broker
from app.domain.timeutil import utcnow
from app.store import transitions as states
from app.store.db import Compiled, db
from app.store.models import DagRun, Function, FunctionVersion, TaskInstance
from app.store.transitions import (
    RUN_FINISHED,
    RUN_TRANSITIONS,
    TASK_FINISHED,
    TASK_TRANSITIONS,
    TASK_UNFINISHED,
    IllegalTransition,
    RunState,
    TaskState,
)

T, R = TaskState, RunState
APP_DIR = Path(__file__).resolve().parents[3] / "app"
SLACK = timedelta(seconds=2)


class Rollback(Exception):
    pass


def make_run(state: RunState = R.RUNNING) -> DagRun:
    function = Function.get_or_none(Function.name == "f") or Function.create(name="f")
    return DagRun.create(
        function=function, run_type="invoke", logical_date=utcnow(), state=str(state)
    )


def add_task(run: DagRun, state: TaskState, task_id: str | None = None, **fields) -> TaskInstance:
    version = FunctionVersion.get_or_none() or FunctionVersion.create(
        function=run.function,
        version=1,
        source="def handler(event, context):\n    return 1\n",
        sha256="0" * 64,
        handler="handler",
        runtime="python",
        timeout=30,
        memory_mb=128,
        env={},
    )
    return TaskInstance.create(
        run=run,
        task_id=task_id or str(state),
        function_version=version,
        state=str(state),
        timeout=30,
        **fields,
    )


def row(ti: TaskInstance) -> dict:
    return TaskInstance.select().where(TaskInstance.id == ti.id).dicts().get()


def pending() -> list[tuple[str, tuple]]:
    return [(message.name, message.args) for message in broker.huey.pending()]


@pytest.fixture
def run(backend):
    return make_run()


# The table ------------------------------------------------------------------------------

EXPECTED_TASK_TRANSITIONS = {
    (T.NONE, T.QUEUED),
    (T.UP_FOR_RETRY, T.QUEUED),
    (T.QUEUED, T.RUNNING),
    (T.RUNNING, T.SUCCESS),
    (T.RUNNING, T.FAILED),
    (T.RUNNING, T.UP_FOR_RETRY),
    (T.NONE, T.UPSTREAM_FAILED),
    (T.NONE, T.SKIPPED),
    (T.NONE, T.CANCELLED),
    (T.QUEUED, T.CANCELLED),
    (T.RUNNING, T.CANCELLED),
    (T.UP_FOR_RETRY, T.CANCELLED),
    (T.SUCCESS, T.NONE),
    (T.FAILED, T.NONE),
    (T.UPSTREAM_FAILED, T.NONE),
    (T.SKIPPED, T.NONE),
    (T.CANCELLED, T.NONE),
    (T.RUNNING, T.SKIPPED),  # a function skips itself
    # an operator marks any task instance success or failed (dagrun_timeout fails them too)
    *{(state, T.SUCCESS) for state in T if state != T.SUCCESS},
    *{(state, T.FAILED) for state in T if state != T.FAILED},
}
EXPECTED_RUN_TRANSITIONS = {
    (R.QUEUED, R.RUNNING),
    (R.RUNNING, R.SUCCESS),
    (R.RUNNING, R.FAILED),
    (R.QUEUED, R.CANCELLED),
    (R.RUNNING, R.CANCELLED),
    (R.SUCCESS, R.RUNNING),
    (R.FAILED, R.RUNNING),
    (R.CANCELLED, R.RUNNING),
}


def test_transition_tables_are_the_documented_ones():
    assert TASK_TRANSITIONS == EXPECTED_TASK_TRANSITIONS
    assert RUN_TRANSITIONS == EXPECTED_RUN_TRANSITIONS
    assert TASK_FINISHED | TASK_UNFINISHED == set(T)
    assert RUN_FINISHED == {R.SUCCESS, R.FAILED, R.CANCELLED}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(T, T)), ids=str)
def test_task_transition(run, source, target):
    ti = add_task(run, source)
    where = TaskInstance.id == ti.id
    if (source, target) in TASK_TRANSITIONS:
        assert states._move_tasks(where, [source], target) == 1
        assert row(ti)["state"] == target
    else:
        with pytest.raises(IllegalTransition):
            states._move_tasks(where, [source], target)
        assert row(ti)["state"] == source


@pytest.mark.parametrize(("source", "target"), list(itertools.product(R, R)), ids=str)
def test_run_transition(backend, source, target):
    dag_run = make_run(source)
    if (source, target) in RUN_TRANSITIONS:
        assert states._move_run(dag_run.id, [source], target) is True
        assert DagRun.get_by_id(dag_run.id).state == target
    else:
        with pytest.raises(IllegalTransition):
            states._move_run(dag_run.id, [source], target)
        assert DagRun.get_by_id(dag_run.id).state == source


def test_an_illegal_transition_names_itself(run):
    ti = add_task(run, T.SUCCESS)
    with pytest.raises(IllegalTransition) as refused:
        states._move_tasks(TaskInstance.id == ti.id, [T.SUCCESS], T.RUNNING)
    assert str(refused.value) == "success -> running is not a transition"


def test_move_leaves_rows_in_other_states(run):
    moving, staying = add_task(run, T.NONE), add_task(run, T.SUCCESS)
    where = TaskInstance.run == run.id
    assert states._move_tasks(where, [T.NONE], T.QUEUED) == 1
    assert (row(moving)["state"], row(staying)["state"]) == (T.QUEUED, T.SUCCESS)


# Compare-and-set ------------------------------------------------------------------------


def test_claim_wins_once_per_try(run):
    ti = add_task(run, T.QUEUED, try_number=1)
    assert states.claim(ti.id, 1, "worker-a") is True
    assert states.claim(ti.id, 1, "worker-b") is False
    claimed = row(ti)
    assert (claimed["state"], claimed["worker"]) == (T.RUNNING, "worker-a")
    assert claimed["started_at"] is not None and claimed["heartbeat_at"] is not None


def test_claim_clears_what_an_earlier_try_left(run):
    ti = add_task(run, T.QUEUED, try_number=2, result={"old": 1}, error="old", parked=True)
    assert states.claim(ti.id, 2, "worker-a") is True
    claimed = row(ti)
    assert (claimed["result"], claimed["error"], claimed["parked"]) == (None, None, False)


@pytest.mark.parametrize(("also", "claimed"), [(True, True), (False, False)])
def test_a_claim_with_a_condition_claims_this_try_only_if_it_holds(run, also, claimed):
    ti, other = add_task(run, T.QUEUED, try_number=1), add_task(run, T.QUEUED, "other")
    condition = TaskInstance.pool.is_null(True) if also else TaskInstance.pool.is_null(False)
    guarded = Compiled(lambda: states.claim_update(condition))
    values = dict(ti_id=ti.id, try_number=1, worker="worker-a", now=utcnow())
    assert guarded.rowcount(**values) == int(claimed)
    assert row(ti)["state"] == (T.RUNNING if claimed else T.QUEUED)
    assert row(other)["state"] == T.QUEUED


@pytest.mark.parametrize("try_number", [0, 2])
def test_claim_of_another_try_is_refused(run, try_number):
    ti = add_task(run, T.QUEUED, try_number=1)
    before = row(ti)
    assert states.claim(ti.id, try_number, "worker-a") is False
    assert row(ti) == before


NOT_RUNNING = [s for s in T if s != T.RUNNING]


@pytest.mark.parametrize("state", NOT_RUNNING)
def test_succeed_and_fail_of_a_try_not_running_change_nothing(run, state):
    ti = add_task(run, state, try_number=1, max_tries=3)
    before = row(ti)
    assert states.succeed(ti.id, 1, {"n": 1}) is False
    assert states.fail(ti.id, 1, 3, "boom", 10) is None  # tries left
    assert states.fail(ti.id, 1, 1, "boom", 10) is None  # no tries left
    assert row(ti) == before
    assert pending() == []


def test_succeed_and_fail_of_a_stale_try_change_nothing(run):
    ti = add_task(run, T.RUNNING, try_number=2, max_tries=3)
    before = row(ti)
    assert states.succeed(ti.id, 1, {"n": 1}) is False
    assert states.fail(ti.id, 1, 3, "boom", 10) is None
    assert row(ti) == before


def test_succeed_records_the_result(run):
    ti = add_task(run, T.RUNNING, try_number=1)
    assert states.succeed(ti.id, 1, {"rows": [1, 2]}) is True
    done = row(ti)
    assert (done["state"], done["result"]) == (T.SUCCESS, {"rows": [1, 2]})
    assert done["finished_at"] is not None
    assert states.succeed(ti.id, 1, {"rows": []}) is False


def test_queue_task_starts_the_next_try_once(run):
    ti = add_task(run, T.NONE)
    assert states.queue_task(ti) is True
    queued = row(ti)
    assert (queued["state"], queued["try_number"]) == (T.QUEUED, 1)
    assert queued["queued_at"] is not None
    assert states.queue_task(ti) is False  # stale: still says try 0
    assert row(ti) == queued
    assert pending() == [("run_task_instance", (ti.id, 1))]


def test_queue_task_from_up_for_retry_clears_next_try_at(run):
    ti = add_task(run, T.UP_FOR_RETRY, try_number=1, next_try_at=utcnow())
    assert states.queue_task(ti) is True
    queued = row(ti)
    assert (queued["state"], queued["try_number"], queued["next_try_at"]) == (T.QUEUED, 2, None)


def test_fail_with_tries_left_goes_up_for_retry_after_the_delay(run):
    ti = add_task(run, T.RUNNING, try_number=1, max_tries=3, retry_delay=30)
    before = utcnow()
    assert states.fail(ti.id, 1, 3, "ValueError: boom", 30) == T.UP_FOR_RETRY
    after = utcnow()
    failed = row(ti)
    assert (failed["state"], failed["error"]) == (T.UP_FOR_RETRY, "ValueError: boom")
    assert before - SLACK <= failed["finished_at"] <= after + SLACK
    delay = timedelta(seconds=30)
    assert before + delay - SLACK <= failed["next_try_at"] <= after + delay + SLACK
    assert pending() == [("release_retry", (ti.id, 1))]


def test_fail_without_tries_left_is_final(run):
    ti = add_task(run, T.RUNNING, try_number=3, max_tries=3)
    assert states.fail(ti.id, 3, 3, "ValueError: boom", 30) == T.FAILED
    failed = row(ti)
    assert failed["finished_at"] is not None
    assert (failed["state"], failed["error"], failed["next_try_at"]) == (
        T.FAILED,
        "ValueError: boom",
        None,
    )
    assert pending() == []


def test_heartbeat_refreshes_the_heartbeat(run):
    long_ago = utcnow() - timedelta(hours=1)
    ti = add_task(run, T.RUNNING, try_number=1, heartbeat_at=long_ago)
    assert states.heartbeat(ti.id, 1) is True
    assert row(ti)["heartbeat_at"] >= utcnow() - SLACK


def test_heartbeat_stops_once_the_run_is_cancelled(run):
    ti = add_task(run, T.RUNNING, try_number=1)
    assert states.heartbeat(ti.id, 1) is True
    assert states.heartbeat(ti.id, 2) is False
    assert states.cancel_run(run.id) is True
    assert states.heartbeat(ti.id, 1) is False


def test_cancel_run_cancels_only_unfinished_tasks(run):
    tis = {state: add_task(run, state) for state in T}
    assert states.cancel_run(run.id) is True
    cancelled_run = DagRun.get_by_id(run.id)
    assert cancelled_run.state == R.CANCELLED and cancelled_run.finished_at is not None
    for state, ti in tis.items():
        assert row(ti)["state"] == (T.CANCELLED if state in TASK_UNFINISHED else state)
        if state in TASK_UNFINISHED:
            assert row(ti)["finished_at"] is not None
    assert states.cancel_run(run.id) is False


@pytest.mark.parametrize("run_state", sorted(RUN_FINISHED))
def test_cancel_of_a_finished_run_changes_nothing(backend, run_state):
    finished = make_run(run_state)
    ti = add_task(finished, T.NONE)
    assert states.cancel_run(finished.id) is False
    assert DagRun.get_by_id(finished.id).state == run_state
    assert row(ti)["state"] == T.NONE


def test_clear_tasks_resets_only_finished_tasks(run):
    old = dict(result={"old": 1}, error="old", worker="w", started_at=utcnow())
    tis = {state: add_task(run, state, try_number=1, finished_at=utcnow(), **old) for state in T}
    untouched = add_task(run, T.SUCCESS, task_id="not-cleared")
    assert states.clear_tasks(run.id, [str(state) for state in T]) == len(TASK_FINISHED)
    for state, ti in tis.items():
        cleared = row(ti)
        if state in TASK_FINISHED:
            assert cleared["state"] == T.NONE
            assert (cleared["result"], cleared["error"], cleared["worker"]) == (None, None, None)
            assert (cleared["started_at"], cleared["finished_at"]) == (None, None)
            assert cleared["try_number"] == 1
        else:
            assert cleared["state"] == state and cleared["error"] == "old"
    assert row(untouched)["state"] == T.SUCCESS


def test_clear_gives_a_task_without_tries_left_one_more(run):
    # (try, max_tries) -> max_tries after: the next try is never past the last
    cases = {(3, 3): 4, (1, 3): 3, (2, 3): 3, (5, 2): 6}
    tis = {
        (tried, most): add_task(run, T.FAILED, f"{tried}/{most}", try_number=tried, max_tries=most)
        for tried, most in cases
    }
    assert states.clear_tasks(run.id, [ti.task_id for ti in tis.values()]) == len(cases)
    for (tried, most), ti in tis.items():
        assert (row(ti)["try_number"], row(ti)["max_tries"]) == (tried, cases[tried, most])


@pytest.mark.parametrize(
    ("state", "age_s", "try_number", "moved"),
    [
        (T.QUEUED, 120, 1, True),
        (T.QUEUED, 30, 1, False),  # queued after the cutoff
        (T.QUEUED, 60, 1, False),  # queued at the cutoff: not before it
        (T.QUEUED, 120, 2, False),  # another try
        (T.RUNNING, 120, 1, False),  # claimed meanwhile
    ],
)
def test_requeue_lost_only_touches_an_old_queued_try(run, state, age_s, try_number, moved):
    now = utcnow()
    ti = add_task(run, state, try_number=1, queued_at=now - timedelta(seconds=age_s))
    before = row(ti)
    assert states.requeue_lost(ti.id, try_number, now - timedelta(seconds=60), now) is moved
    after = row(ti)
    if moved:
        assert after["queued_at"] >= now - SLACK
        assert pending() == [("run_task_instance", (ti.id, 1))]
    else:
        assert after == before
        assert pending() == []


def test_mark_not_run_moves_a_waiting_task_once(run):
    ti = add_task(run, T.NONE)
    assert states.mark_not_run(ti, T.SKIPPED, "not chosen") is True
    assert states.mark_not_run(ti, T.UPSTREAM_FAILED) is False
    skipped = row(ti)
    assert (skipped["state"], skipped["error"]) == (T.SKIPPED, "not chosen")
    assert skipped["finished_at"] is not None


def test_run_lifecycle(backend):
    dag_run = make_run(R.QUEUED)
    assert states.finish_run(dag_run.id, R.SUCCESS) is False  # not running yet
    assert states.start_run(dag_run.id) is True
    assert states.start_run(dag_run.id) is False
    assert DagRun.get_by_id(dag_run.id).started_at is not None
    assert states.reopen_run(dag_run.id) is False  # not finished
    assert DagRun.get_by_id(dag_run.id).timeout_at is None  # no dagrun_timeout
    assert states.finish_run(dag_run.id, R.FAILED) is True
    assert states.finish_run(dag_run.id, R.SUCCESS) is False
    assert DagRun.get_by_id(dag_run.id).state == R.FAILED
    assert DagRun.get_by_id(dag_run.id).finished_at is not None
    assert states.reopen_run(dag_run.id) is True
    reopened = DagRun.get_by_id(dag_run.id)
    assert (reopened.state, reopened.finished_at) == (R.RUNNING, None)


def test_a_run_started_with_a_dagrun_timeout_times_out_that_long_after_its_start(backend):
    dag_run = make_run(R.QUEUED)
    assert states.start_run(dag_run.id, timeout_s=30) is True
    started = DagRun.get_by_id(dag_run.id)
    assert started.timeout_at - started.started_at == timedelta(seconds=30)


# Births ----------------------------------------------------------------------------------


def test_every_run_is_born_queued_and_every_task_instance_none():
    assert states.new_run(run_type="manual", state="running") == {
        "run_type": "manual",
        "state": R.QUEUED,
    }
    assert states.new_task_instance(task_id="t", state="queued") == {
        "task_id": "t",
        "state": T.NONE,
    }


# The other task transitions, each with the state it needs ---------------------------------


def test_skip_ends_a_running_try_with_its_reason(run):
    ti, quiet = add_task(run, T.RUNNING, try_number=1), add_task(run, T.RUNNING, "q", try_number=1)
    assert states.skip(ti.id, 2, "stale") is False
    assert states.skip(ti.id, 1, "nothing to do") is True
    assert states.skip(quiet.id, 1, None) is True
    skipped = row(ti)
    assert (skipped["state"], skipped["error"]) == (T.SKIPPED, "skipped: nothing to do")
    assert skipped["finished_at"] is not None
    assert row(quiet)["error"] is None
    assert states.skip(ti.id, 1, "again") is False


@pytest.mark.parametrize("target", [T.SUCCESS, T.FAILED])
def test_mark_moves_any_other_state(run, target):
    for state in T:
        ti = add_task(run, state, f"{state}", error="old")
        moved = states.mark(ti.id, target)
        marked = row(ti)
        if state == target:
            assert moved is False and marked["error"] == "old"
            continue
        assert moved is True and marked["state"] == target, state
        assert marked["error"] == ("marked failed" if target == T.FAILED else None)
        assert marked["finished_at"] is not None


def test_mark_touches_only_its_task_instance(run):
    ti, other = add_task(run, T.RUNNING), add_task(run, T.RUNNING, "other")
    assert states.mark(ti.id, T.SUCCESS) is True
    assert row(other)["state"] == T.RUNNING


def test_hand_back_returns_a_running_try_without_spending_a_retry(run):
    ti = add_task(run, T.RUNNING, try_number=1, max_tries=2)
    assert states.hand_back(ti.id, 2, "stale") is False
    before = utcnow()
    assert states.hand_back(ti.id, 1, "the worker shut down") is True
    back = row(ti)
    assert (back["state"], back["try_number"], back["max_tries"]) == (T.UP_FOR_RETRY, 1, 3)
    assert back["error"] == "the worker shut down"
    assert back["next_try_at"] == back["finished_at"] and back["finished_at"] >= before - SLACK
    assert pending() == [("release_retry", (ti.id, 1))]
    assert states.hand_back(ti.id, 1, "again") is False
    assert len(pending()) == 1


def test_hand_back_of_a_try_not_running_changes_nothing(run):
    for state in NOT_RUNNING:
        ti = add_task(run, state, try_number=1)
        before = row(ti)
        assert states.hand_back(ti.id, 1, "the worker shut down") is False, state
        assert row(ti) == before
    assert pending() == []


def test_park_and_unpark_a_queued_try(run):
    ti = add_task(run, T.QUEUED, try_number=1)
    assert states.unpark(ti.id, 1) is False  # not parked
    assert states.park(ti.id, 2) is False  # another try
    assert states.park(ti.id, 1) is True
    assert row(ti)["parked"] is True
    assert pending() == []
    assert states.unpark(ti.id, 2) is False
    assert states.unpark(ti.id, 1) is True
    assert (row(ti)["state"], row(ti)["parked"]) == (T.QUEUED, False)
    assert pending() == [("run_task_instance", (ti.id, 1))]
    assert states.unpark(ti.id, 1) is False
    assert len(pending()) == 1


def test_only_a_queued_try_is_parked(run):
    for state in (s for s in T if s != T.QUEUED):
        ti = add_task(run, state, try_number=1)
        assert states.park(ti.id, 1) is False, state
        assert row(ti)["parked"] is False


def test_unpark_of_a_try_no_longer_queued_changes_nothing(run):
    ti = add_task(run, T.RUNNING, try_number=1, parked=True)
    assert states.unpark(ti.id, 1) is False
    assert row(ti)["parked"] is True
    assert pending() == []


def test_reopen_not_run_reopens_only_tasks_decided_not_to_run(run):
    tis = {state: add_task(run, state, error="why", finished_at=utcnow()) for state in T}
    elsewhere = add_task(make_run(), T.SKIPPED, "skipped")
    listed = [str(state) for state in T]
    assert states.reopen_not_run(run.id, []) == 0
    assert states.reopen_not_run(run.id, listed) == 2
    for state, ti in tis.items():
        reopened = row(ti)
        if state in (T.UPSTREAM_FAILED, T.SKIPPED):
            assert (reopened["state"], reopened["error"], reopened["finished_at"]) == (
                T.NONE,
                None,
                None,
            )
        else:
            assert (reopened["state"], reopened["error"]) == (state, "why")
    assert row(elsewhere)["state"] == T.SKIPPED


def test_time_out_run_fails_the_run_and_what_it_had_going(run):
    tis = {state: add_task(run, state) for state in T}
    assert states.time_out_run(run.id, "the run exceeded its dagrun_timeout") is True
    timed_out = DagRun.get_by_id(run.id)
    assert timed_out.state == R.FAILED and timed_out.finished_at is not None
    for state, ti in tis.items():
        after = row(ti)
        if state in TASK_UNFINISHED:
            assert (after["state"], after["error"]) == (
                T.FAILED,
                "the run exceeded its dagrun_timeout",
            )
            assert after["finished_at"] is not None
        else:
            assert (after["state"], after["error"]) == (state, None)
    assert states.time_out_run(run.id, "again") is False


def test_time_out_of_a_run_not_running_changes_nothing(backend):
    for run_state in (R.QUEUED, *sorted(RUN_FINISHED)):
        dag_run = make_run(run_state)
        ti = add_task(dag_run, T.NONE)
        assert states.time_out_run(dag_run.id, "late") is False, run_state
        assert DagRun.get_by_id(dag_run.id).state == run_state
        assert row(ti)["state"] == T.NONE


# In bulk ----------------------------------------------------------------------------------


def test_start_runs_starts_the_queued_ones_and_names_them(backend):
    queued = [make_run(R.QUEUED) for _ in range(2)]
    cancelled, other = make_run(R.CANCELLED), make_run(R.QUEUED)
    ids = [r.id for r in queued] + [cancelled.id]
    assert sorted(states.start_runs(ids, timeout_s=60)) == sorted(r.id for r in queued)
    for dag_run in queued:
        started = DagRun.get_by_id(dag_run.id)
        assert started.state == R.RUNNING
        assert started.timeout_at - started.started_at == timedelta(seconds=60)
    assert DagRun.get_by_id(cancelled.id).state == R.CANCELLED
    assert DagRun.get_by_id(other.id).state == R.QUEUED
    assert states.start_runs([other.id]) == [other.id]
    assert DagRun.get_by_id(other.id).timeout_at is None
    assert states.start_runs([other.id]) == []


def test_queue_first_tasks_queues_the_waiting_tasks_without_upstream(backend):
    started, elsewhere = make_run(), make_run()
    first = add_task(started, T.NONE, "first", upstream=[], try_number=1, next_try_at=utcnow())
    later = add_task(started, T.NONE, "later", upstream=["first"])
    done = add_task(started, T.SUCCESS, "done", upstream=[])
    not_started = add_task(elsewhere, T.NONE, "other", upstream=[])
    with db.atomic():
        assert states.queue_first_tasks([started.id]) == 1
        assert pending() == []  # not before the commit
    queued = row(first)
    assert (queued["state"], queued["try_number"], queued["next_try_at"]) == (T.QUEUED, 2, None)
    assert queued["queued_at"] is not None
    assert [row(ti)["state"] for ti in (later, done, not_started)] == [T.NONE, T.SUCCESS, T.NONE]
    assert pending() == [("run_task_instance", (first.id, 2))]


# Enqueue after commit -------------------------------------------------------------------


def test_queue_task_in_a_rolled_back_transaction_enqueues_nothing(run):
    ti = add_task(run, T.NONE)
    with pytest.raises(Rollback), db.atomic():
        assert states.queue_task(ti) is True
        raise Rollback
    assert broker.huey.pending_count() == 0
    assert row(ti)["state"] == T.NONE
    assert states.queue_task(ti) is True  # the rollback left try 0 to queue
    assert pending() == [("run_task_instance", (ti.id, 1))]


def test_queue_task_enqueues_once_after_commit(run):
    ti = add_task(run, T.NONE)
    with db.atomic():
        assert states.queue_task(ti) is True
        assert broker.huey.pending_count() == 0  # not before the commit
    assert broker.huey.pending_count() == 1
    assert pending() == [("run_task_instance", (ti.id, 1))]


# Nothing else writes a state ------------------------------------------------------------

STATE_WRITE = re.compile(r"update\(\s*state\s*=|\.state\s*=[^=]")


def test_only_the_states_module_writes_state():
    writers = {
        path.relative_to(APP_DIR.parent).as_posix()
        for path in APP_DIR.rglob("*.py")
        if STATE_WRITE.search(path.read_text())
    }
    assert writers == {"app/store/transitions.py"}
