"""Every state transition of runs and task instances, in one place.

Each transition is one compare-and-set UPDATE: it names the states it may leave (and, for a
task, the try it concerns), so two processes racing for the same change cannot both win, and
a stale actor (a duplicated message, a worker whose try was cancelled) changes nothing.
Nothing outside this module writes a ``state`` column. Messages are enqueued only after the
commit that made their task ``queued`` (app/store/outbox.py).
"""

from datetime import datetime, timedelta

from peewee import Case, Value

from app.domain.states import (
    RUN_FINISHED,
    RUN_TRANSITIONS,
    TASK_FINISHED,
    TASK_TRANSITIONS,
    TASK_UNFINISHED,
    IllegalTransition,
    RunState,
    TaskState,
)
from app.domain.timeutil import utcnow
from app.store import outbox
from app.store.db import Compiled, Slot, db
from app.store.models import DagRun, TaskInstance

T, R = TaskState, RunState


def _check(table, sources, target) -> list[str]:
    sources = list(sources)
    for source in sources:
        if (source, target) not in table:
            raise IllegalTransition(f"{source} -> {target} is not a transition")
    return [str(s) for s in sources]


def _move_tasks(where, sources, target, **fields) -> int:
    """Move the matching task instances from ``sources`` to ``target``; returns the count."""
    return _tasks_update(where, sources, target, **fields).execute()


def _tasks_update(where, sources, target, **fields):
    states = _check(TASK_TRANSITIONS, sources, target)
    query = TaskInstance.update(state=str(target), **fields)
    return query.where(where & TaskInstance.state.in_(states))


def _move_run(run_id: int, sources, target, **fields) -> bool:
    """Move the run by compare-and-set; a run that reached a final state tells its waiters
    after the commit (outbox.run_ended)."""
    states = _check(RUN_TRANSITIONS, sources, target)
    query = DagRun.update(state=str(target), **fields)
    moved = query.where((DagRun.id == run_id) & DagRun.state.in_(states)).execute() == 1
    if moved and target in RUN_FINISHED:
        outbox.run_ended(run_id)
    return moved


def _this_try(ti_id: int | Slot, try_number: int | Slot):
    """The task instance's row while it is on that try (a Slot: a compiled statement's)."""
    return (TaskInstance.id == ti_id) & (TaskInstance.try_number == try_number)


# Births: the first state of every new row -----------------------------------------------


def new_run(**fields) -> dict:
    """A ``dag_run`` row's fields for an insert: every run is born ``queued``."""
    return {**fields, "state": str(R.QUEUED)}


def new_task_instance(**fields) -> dict:
    """A ``task_instance`` row's fields for an insert: every task instance is born ``none``."""
    return {**fields, "state": str(T.NONE)}


# Task instances -------------------------------------------------------------------------


# The transitions of every try (queue, claim, succeed) run as compiled statements: see
# app/store/db.py's Compiled. Their Slot parameters: ti_id, try_number, now, and their own.
_QUEUE = Compiled(
    lambda: _tasks_update(
        _this_try(Slot("ti_id"), Slot("try_number")),
        [T.NONE, T.UP_FOR_RETRY],
        T.QUEUED,
        try_number=Slot("next_try", TaskInstance.try_number),
        queued_at=Slot("now", TaskInstance.queued_at),
        next_try_at=None,
    )
)


def queue_task(ti: TaskInstance) -> bool:
    """none/up_for_retry -> queued, starting try ``ti.try_number + 1``; enqueued after commit."""
    next_try = ti.try_number + 1
    moved = _QUEUE.rowcount(ti_id=ti.id, try_number=ti.try_number, next_try=next_try, now=utcnow())
    if moved:
        outbox.try_queued(ti.id, next_try)
    return bool(moved)


def requeue_lost(ti_id: int, try_number: int, queued_before: datetime, now: datetime) -> bool:
    """Enqueue again a try left queued and unclaimed since before ``queued_before``; of two
    clocks doing this at once, one wins (the other finds ``queued_at`` moved on)."""
    moved = (
        TaskInstance.update(queued_at=now)
        .where(
            _this_try(ti_id, try_number)
            & (TaskInstance.state == str(T.QUEUED))
            & (TaskInstance.queued_at < queued_before)
        )
        .execute()
    )
    if moved:
        outbox.try_queued(ti_id, try_number)
    return bool(moved)


def park(ti_id: int, try_number: int) -> bool:
    """A queued try whose DAG or pool has no free slot waits, with no message in flight."""
    query = TaskInstance.update(parked=True).where(
        _this_try(ti_id, try_number) & (TaskInstance.state == str(T.QUEUED))
    )
    return query.execute() == 1


def unpark(ti_id: int, try_number: int) -> bool:
    """A slot is free: the parked try is enqueued again (after the commit)."""
    query = TaskInstance.update(parked=False).where(
        _this_try(ti_id, try_number) & (TaskInstance.state == str(T.QUEUED)) & TaskInstance.parked
    )
    if query.execute() != 1:
        return False
    outbox.try_queued(ti_id, try_number)
    return True


def claim_update(also=None):
    """The claim, queued -> running for exactly this try, as a statement to compile (Slots:
    ti_id, try_number, now, worker), if ``also`` holds (app/engine/slots.py adds a free slot)."""
    fields = dict(
        started_at=Slot("now", TaskInstance.started_at),
        heartbeat_at=Slot("now", TaskInstance.heartbeat_at),
        worker=Slot("worker", TaskInstance.worker),
        result=None,
        error=None,
        parked=False,
    )
    where = _this_try(Slot("ti_id"), Slot("try_number"))
    if also is not None:
        where &= also
    return _tasks_update(where, [T.QUEUED], T.RUNNING, **fields)


_CLAIM = Compiled(claim_update)


def claim(ti_id: int, try_number: int, worker: str, now: datetime | None = None) -> bool:
    """queued -> running for exactly this try (started at ``now``); False: drop the message."""
    values = dict(ti_id=ti_id, try_number=try_number, worker=worker, now=now or utcnow())
    return _CLAIM.rowcount(**values) == 1


def heartbeat(ti_id: int, try_number: int) -> bool:
    """Refresh a running try's heartbeat; False when the try is no longer running."""
    query = TaskInstance.update(heartbeat_at=utcnow()).where(
        _this_try(ti_id, try_number) & (TaskInstance.state == str(T.RUNNING))
    )
    return query.execute() == 1


_SUCCEED = Compiled(
    lambda: _tasks_update(
        _this_try(Slot("ti_id"), Slot("try_number")),
        [T.RUNNING],
        T.SUCCESS,
        result=Slot("result", TaskInstance.result),
        finished_at=Slot("now", TaskInstance.finished_at),
    )
)


def succeed(ti_id: int, try_number: int, result) -> bool:
    values = dict(ti_id=ti_id, try_number=try_number, result=result, now=utcnow())
    return _SUCCEED.rowcount(**values) == 1


def fail(
    ti_id: int, try_number: int, max_tries: int, error: str | None, retry_delay: float
) -> str | None:
    """running -> up_for_retry while tries remain, else failed; returns the state reached."""
    now = utcnow()
    if try_number < max_tries:
        next_try_at = now + timedelta(seconds=retry_delay)
        fields = dict(error=error, finished_at=now, next_try_at=next_try_at)
        if _move_tasks(_this_try(ti_id, try_number), [T.RUNNING], T.UP_FOR_RETRY, **fields):
            outbox.retry_due(ti_id, try_number, next_try_at)
            return T.UP_FOR_RETRY
        return None
    moved = _move_tasks(
        _this_try(ti_id, try_number), [T.RUNNING], T.FAILED, error=error, finished_at=now
    )
    return T.FAILED if moved else None


def skip(ti_id: int, try_number: int, reason: str | None) -> bool:
    """running -> skipped: the function skipped itself."""
    fields = dict(error=f"skipped: {reason}" if reason else None, finished_at=utcnow())
    return _move_tasks(_this_try(ti_id, try_number), [T.RUNNING], T.SKIPPED, **fields) == 1


def mark(ti_id: int, target: TaskState) -> bool:
    """An operator marks a task instance success or failed, whatever its state (a running
    try is then killed by its worker, whose heartbeat finds it no longer running)."""
    sources = [state for state in T if state != target]
    fields = dict(finished_at=utcnow(), error="marked failed" if target == T.FAILED else None)
    return _move_tasks(TaskInstance.id == ti_id, sources, target, **fields) == 1


def hand_back(ti_id: int, try_number: int, reason: str) -> bool:
    """running -> up_for_retry at once, without spending a retry (max_tries grows by one):
    the worker shut down before the try could finish. Released after the commit."""
    now = utcnow()
    fields = dict(
        error=reason, finished_at=now, next_try_at=now, max_tries=TaskInstance.max_tries + 1
    )
    if not _move_tasks(_this_try(ti_id, try_number), [T.RUNNING], T.UP_FOR_RETRY, **fields):
        return False
    outbox.retry_due(ti_id, try_number, now)
    return True


def mark_not_run(ti: TaskInstance, target: TaskState, reason: str | None = None) -> bool:
    """none -> upstream_failed | skipped, decided by the task's trigger rule (``reason``
    None) or by an upstream branch that did not choose it (``reason`` says which)."""
    now = utcnow()
    where = _this_try(ti.id, ti.try_number)
    return _move_tasks(where, [T.NONE], target, finished_at=now, error=reason) == 1


def reopen_not_run(run_id: int, task_ids: list[str]) -> int:
    """upstream_failed | skipped -> none, for tasks decided not to run by upstreams that
    are now cleared or marked: they are decided again when those finish (their try number
    is unchanged: they never ran)."""
    where = (TaskInstance.run == run_id) & TaskInstance.task_id.in_(task_ids)
    sources = [T.UPSTREAM_FAILED, T.SKIPPED]
    return _move_tasks(where, sources, T.NONE, finished_at=None, error=None) if task_ids else 0


def clear_tasks(run_id: int, task_ids) -> int:
    """Finished task instances -> none, so they run again: their try_number grows, and
    max_tries with it when no try was left (try 3 of 3, cleared, runs as try 4 of 4)."""
    where = (TaskInstance.run == run_id) & TaskInstance.task_id.in_(list(task_ids))
    next_try = TaskInstance.try_number + 1
    fields = dict(
        result=None,
        error=None,
        started_at=None,
        finished_at=None,
        worker=None,
        max_tries=Case(
            None, [(TaskInstance.max_tries < next_try, next_try)], TaskInstance.max_tries
        ),
    )
    return _move_tasks(where, TASK_FINISHED, T.NONE, **fields)


# Runs -----------------------------------------------------------------------------------


def start_run(run_id: int, timeout_s: float | None = None) -> bool:
    now = utcnow()
    timeout_at = now + timedelta(seconds=timeout_s) if timeout_s else None
    return _move_run(run_id, [R.QUEUED], R.RUNNING, started_at=now, timeout_at=timeout_at)


def finish_run(run_id: int, target: RunState) -> bool:
    return _move_run(run_id, [R.RUNNING], target, finished_at=utcnow())


def reopen_run(run_id: int) -> bool:
    """A finished run -> running again, after some of its tasks were cleared."""
    return _move_run(run_id, RUN_FINISHED, R.RUNNING, finished_at=None)


def time_out_run(run_id: int, error: str) -> bool:
    """dagrun_timeout: the run fails, and so does every task instance not finished (running
    tries are killed by their workers, whose heartbeat finds them no longer running)."""
    with db.atomic():
        if not _move_run(run_id, [R.RUNNING], R.FAILED, finished_at=utcnow()):
            return False
        where = TaskInstance.run == run_id
        _move_tasks(where, TASK_UNFINISHED, T.FAILED, error=error, finished_at=utcnow())
    return True


def cancel_run(run_id: int) -> bool:
    """Cancel a run and every task instance not finished; running tries are killed by their
    worker, whose heartbeat finds the try no longer running."""
    with db.atomic():
        if not _move_run(run_id, [R.QUEUED, R.RUNNING], R.CANCELLED, finished_at=utcnow()):
            return False
        _move_tasks(TaskInstance.run == run_id, TASK_UNFINISHED, T.CANCELLED, finished_at=utcnow())
    return True


# In bulk, for the clock's tick (app/clock/scheduling_batch.py) ------------------------------


def start_runs(run_ids: list[int], timeout_s: float | None = None) -> list[int]:
    """``start_run`` for many runs in one UPDATE: queued -> running; returns the ids moved
    (a run cancelled meanwhile is not)."""
    now = utcnow()
    timeout_at = now + timedelta(seconds=timeout_s) if timeout_s else None
    sources = _check(RUN_TRANSITIONS, [R.QUEUED], R.RUNNING)
    query = DagRun.update(state=str(R.RUNNING), started_at=now, timeout_at=timeout_at).where(
        DagRun.id.in_(run_ids) & DagRun.state.in_(sources)
    )
    return [run_id for (run_id,) in query.returning(DagRun.id).tuples().execute()]


def queue_first_tasks(run_ids: list[int]) -> int:
    """``queue_task`` for every task with no upstream of the runs just started, in one
    UPDATE: none -> queued, each starting its next try, enqueued after the commit. Returns
    how many were queued."""
    no_upstream = Value([], unpack=False)  # '[]', by the column's own converter
    where = TaskInstance.run.in_(run_ids) & (TaskInstance.upstream == no_upstream)
    fields = dict(try_number=TaskInstance.try_number + 1, queued_at=utcnow(), next_try_at=None)
    query = _tasks_update(where, [T.NONE], T.QUEUED, **fields)
    queued = list(query.returning(TaskInstance.id, TaskInstance.try_number).tuples().execute())
    outbox.tries_queued(queued)
    return len(queued)
