"""Deciding what runs next: start queued runs (within max_active_runs), queue the successors
of a finished task by their trigger rules, finish the run when every task is finished, and
then call its callback and start the DAG's next queued run.

Never locks the run: each finisher commits its own state first, then reads its successors'
upstream states afresh, then moves a successor by compare-and-set, so of two finishers
racing, the one that commits last sees both and only one of them queues the successor.
"""

import logging
from datetime import datetime

from peewee import fn

from app.domain import trigger_rules
from app.domain.timeutil import isoformat, utcnow
from app.engine import callbacks, run_factory, sweeps
from app.store import locks, outbox
from app.store import transitions as states
from app.store.db import Compiled, CompiledIn, Slot, db, is_postgres
from app.store.models import Dag, DagRun, DagVersion, TaskInstance
from app.store.transitions import RunState, TaskState

FAILED_STATES = {TaskState.FAILED, TaskState.UPSTREAM_FAILED}  # a run with one has failed
RUN_FAILS_ON = FAILED_STATES | {TaskState.CANCELLED}  # cancelled: a cleared run finishing

log = logging.getLogger(__name__)
LONG_IN_LIST = 32  # IN lists up to this long run compiled, one statement per length


def start_run(run_id: int, timeout_s: float | None = None) -> bool:
    """queued -> running, and queue the run's tasks that have no upstream (the messages go
    out after the commit of the enclosing transaction)."""
    if not states.start_run(run_id, timeout_s):
        return False
    for ti in _TASKS_OF_RUN.rows(run_id=run_id):
        if not ti.upstream:
            states.queue_task(ti)
    return True


_TASKS_OF_RUN = Compiled(
    lambda: TaskInstance.select(
        TaskInstance.id, TaskInstance.try_number, TaskInstance.upstream
    ).where(TaskInstance.run == Slot("run_id"))
)


def create_dag_run(dag: Dag, version: DagVersion, run_type: str, logical_date=None, **fields):
    """A run of ``version`` with its task instances, pinned to the function versions resolved
    now, started at once unless max_active_runs is reached or the DAG is paused (then it
    waits ``queued``); one transaction. ``fields``: conf, key, interval, trigger (see
    run_factory.create_run). Raises peewee.IntegrityError if the run exists (its key or its
    scheduled logical date) and Invalid if a function is gone."""
    pinned = run_factory.pin_versions(version.spec["tasks"])
    conf, key, interval = (
        fields.pop("conf", None),
        fields.pop("key", None),
        fields.pop("interval", None),
    )
    with db.atomic():
        run = run_factory.create_run(
            dag, version, None, run_type, logical_date, conf, key, interval, **fields
        )
        run_factory.create_task_instances(run, version.spec["tasks"], pinned)
        start_queued_runs(dag.id, version.spec)
    return run


def start_queued_runs(dag_pk: int, spec: dict | None = None) -> list[int]:
    """Start the DAG's oldest queued runs while fewer than its max_active_runs are running;
    none while it is paused. Starters of one DAG are serialised by an advisory lock (on
    SQLite, by the write lock every transaction takes): run starts are rare, task hand-offs
    never take it. Not a row lock on the DAG: inserting a run takes a key-share lock on that
    row (the foreign key), and two triggers upgrading it to FOR UPDATE deadlock."""
    with db.atomic():
        locks.take(locks.RUN_STARTS, dag_pk)
        paused = _PAUSED.first(dag_pk=dag_pk)
        if paused is None or paused[0]:
            return []
        spec = spec or _current_spec(dag_pk)
        running = _RUNS_IN_STATE.first(dag_pk=dag_pk, state=str(RunState.RUNNING))[0]
        room = spec["max_active_runs"] - running
        if room <= 0:
            return []
        queued = _QUEUED_RUNS.rows(dag_pk=dag_pk, room=room)
        return [run_id for (run_id,) in queued if start_run(run_id, spec.get("dagrun_timeout"))]


# Asked on every trigger: compiled (app/store/db.py).
_PAUSED = Compiled(lambda: Dag.select(Dag.paused).where(Dag.id == Slot("dag_pk")).tuples())
_RUNS_IN_STATE = Compiled(
    lambda: (
        DagRun.select(fn.COUNT(DagRun.id))
        .where((DagRun.dag == Slot("dag_pk")) & (DagRun.state == Slot("state")))
        .tuples()
    )
)
_QUEUED_RUNS = Compiled(
    lambda: (
        DagRun.select(DagRun.id)
        .where((DagRun.dag == Slot("dag_pk")) & (DagRun.state == str(RunState.QUEUED)))
        .order_by(DagRun.logical_date, DagRun.id)
        .limit(Slot("room"))
        .tuples()
    )
)


def _current_spec(dag_pk: int) -> dict:
    query = DagVersion.select(DagVersion.spec).where(DagVersion.dag == dag_pk)
    return query.order_by(DagVersion.version.desc()).first().spec


def not_chosen_by(task_id: str) -> str:
    """The reason kept on a task a branch skipped (runs.clear reopens it only with that
    branch)."""
    return f"not chosen by the branch of {task_id!r}"


def skip_not_chosen(run_id: int, downstream: list[str], branch, task_id: str) -> list:
    """The direct successors a branching task did not choose, still waiting, skipped in the
    branching task's own transaction (with the reason kept on them): another upstream
    finishing meanwhile must never find one of them ready. Returns those skipped."""
    reason = not_chosen_by(task_id)
    chosen = set(branch)
    waiting = _waiting(run_id, [t for t in downstream if t not in chosen])
    return [ti for ti in waiting if states.mark_not_run(ti, TaskState.SKIPPED, reason)]


def queue_sole_successors(run_id: int, downstream: list[str], task_id: str, state: str):
    """In the finishing task's own transaction: queue each waiting successor whose only
    upstream is ``task_id`` (just moved to ``state``) and whose rule makes it ready. No other
    finisher can decide such a successor, so one commit holds the task's end and its
    successor's start (a chain's hand-off); a successor with other upstreams is decided
    after the commit (task_finished), and so is one to skip or fail, whose own successors
    may have other upstreams. Returns (the task ids queued, the other waiting successors)."""
    queued, others = set(), []
    for ti in _waiting(run_id, downstream):
        sole = ti.upstream == [task_id]
        if sole and trigger_rules.evaluate(ti.trigger_rule, [state]) == "ready":
            if states.queue_task(ti):
                queued.add(ti.task_id)
            continue
        others.append(ti)
    return queued, others


def task_finished(
    run_id: int, downstream: list[str], known=None, skipped=(), queued: int = 0, waiting=None
) -> None:
    """After a task's try reached a final state: decide its successors, then the run.
    ``skipped``: the successors a branch skipped with it (skip_not_chosen), whose own
    successors are decided here too. ``known``: states the caller has just committed
    ({task_id: state}), not read again. ``queued``: how many successors the caller already
    queued, ``waiting``: the others, as the caller read them (queue_sole_successors). A
    transaction is opened only if some successor can be decided: the tasks of a wide fan-out
    find their join still waiting by reads only."""
    known = dict(known or {})
    unfinished = queued
    decided = [] if skipped else _decisions(run_id, downstream, known, waiting)
    if skipped or any(decision != "wait" for _, decision in decided):
        with db.atomic():
            for ti in skipped:
                known[ti.task_id] = str(TaskState.SKIPPED)
                unfinished += evaluate(run_id, ti.downstream, known)
            unfinished += evaluate(run_id, downstream, known)
    else:
        unfinished += len(decided)  # each still waits for another upstream
    if not unfinished:  # a successor queued or still waiting: the run cannot be over
        maybe_finish_run(run_id)


def _decisions(run_id: int, task_ids: list[str], known: dict, waiting=None) -> list:
    """Each waiting task of ``task_ids`` (or of ``waiting``, if read already) with its
    trigger rule's decision, from its upstreams' states (those in ``known`` as given, the
    others read)."""
    candidates = _waiting(run_id, task_ids) if waiting is None else waiting
    short = [ti for ti in candidates if len(ti.upstream) <= LONG_IN_LIST]
    needed = {u for ti in short for u in ti.upstream} - known.keys()
    read = {**known, **_states(run_id, needed)}
    decided = []
    for ti in candidates:
        if len(ti.upstream) <= LONG_IN_LIST:
            upstream_states = [read[u] for u in ti.upstream]
        else:
            upstream_states = _distinct_upstream_states(run_id, ti, known)
        decided.append((ti, trigger_rules.evaluate(ti.trigger_rule, upstream_states)))
    return decided


def evaluate(run_id: int, task_ids: list[str], known: dict | None = None) -> int:
    """Queue, skip or fail each of ``task_ids`` still waiting (state none) whose trigger rule
    can now be decided; a task decided as not to run has its own successors evaluated.
    Upstream states are read afresh, but for those in ``known`` (committed by the caller: a
    chain's next task needs no read). Returns how many it queued or left waiting."""
    known = {} if known is None else known
    pending, unfinished = list(task_ids), 0
    while pending:
        decided, pending = _decisions(run_id, pending, known), []
        for ti, decision in decided:
            if decision == "ready":
                unfinished += states.queue_task(ti)
            elif decision in (TaskState.UPSTREAM_FAILED, TaskState.SKIPPED):
                if states.mark_not_run(ti, TaskState(decision)):
                    known[ti.task_id] = str(decision)
                    pending.extend(ti.downstream)
            else:
                unfinished += 1
    return unfinished


def _waiting(run_id: int, task_ids: list[str]) -> list[TaskInstance]:
    return _WAITING.rows(sorted(set(task_ids)), run_id=run_id) if task_ids else []


_WAITING = CompiledIn(
    lambda ids, run_id: TaskInstance.select(
        *(TaskInstance.id, TaskInstance.task_id, TaskInstance.try_number),
        *(TaskInstance.upstream, TaskInstance.downstream, TaskInstance.trigger_rule),
    ).where(
        (TaskInstance.run == run_id)
        & TaskInstance.task_id.in_(ids)
        & (TaskInstance.state == str(TaskState.NONE))
    )
)


def _states(run_id: int, task_ids: set[str]) -> dict[str, str]:
    """The state of each of the run's ``task_ids``, in one query. Past a few dozen ids, the
    whole run's states: building a long ``IN (...)`` costs more than the rows."""
    if not task_ids:
        return {}
    if len(task_ids) > LONG_IN_LIST:
        return dict(_RUN_STATES.rows(run_id=run_id))
    return dict(_STATES.rows(sorted(task_ids), run_id=run_id))


def _states_query(run_id, ids=None):
    where = TaskInstance.run == run_id
    if ids is not None:
        where &= TaskInstance.task_id.in_(ids)
    return TaskInstance.select(TaskInstance.task_id, TaskInstance.state).where(where).tuples()


_STATES = CompiledIn(lambda ids, run_id: _states_query(run_id, ids), longest=LONG_IN_LIST)
_RUN_STATES = Compiled(lambda: _states_query(Slot("run_id")))


def _distinct_upstream_states(run_id: int, ti: TaskInstance, known: dict) -> list[str]:
    """The distinct states among a task's many upstreams (all a trigger rule needs), the
    database reading the upstream list from the task's own row: the join of a 1,000-task
    fan-out is evaluated by each of its 1,000 upstream tasks, and shipping 1,000 rows to
    each of them made the fan-out quadratic in Python."""
    sql = _DISTINCT_UPSTREAM_SQL["postgres" if is_postgres() else "sqlite"]
    read = {state for (state,) in db.execute_sql(sql, (run_id, ti.id)).fetchall()}
    return sorted(read | {known[u] for u in ti.upstream if u in known})


# The upstream list is the task's JSON column, expanded by the database itself, once: an
# array on Postgres (an IN over the set-returning function was planned as a nested loop
# expanding the list once per row of the run, before the table had statistics), an
# uncorrelated IN on SQLite (a temporary index, built once); then the (run_id, task_id) index.
_DISTINCT_UPSTREAM_SQL = {
    "postgres": (
        "SELECT DISTINCT state FROM task_instance WHERE run_id = %s AND task_id = ANY(ARRAY("
        "SELECT json_array_elements_text(upstream::json) FROM task_instance WHERE id = %s))"
    ),
    "sqlite": (
        "SELECT DISTINCT state FROM task_instance WHERE run_id = ? AND task_id IN"
        " (SELECT value FROM json_each((SELECT upstream FROM task_instance WHERE id = ?)))"
    ),
}


def maybe_finish_run(run_id: int) -> None:
    """Set the run's final state once no task is unfinished (only one finisher's CAS wins)."""
    task_states = {state for (state,) in _DISTINCT_STATES.rows(run_id=run_id)}
    if task_states & states.TASK_UNFINISHED:
        return
    failed = bool(task_states & RUN_FAILS_ON)
    if states.finish_run(run_id, RunState.FAILED if failed else RunState.SUCCESS):
        run_finished(run_id)


_DISTINCT_STATES = Compiled(
    lambda: (
        TaskInstance.select(TaskInstance.state)
        .where(TaskInstance.run == Slot("run_id"))
        .distinct()
        .tuples()
    )
)


def reconcile_stalled_runs() -> int:
    """Runs still running with no task queued, running or waiting to retry: the worker that
    finished their last task died before dispatching (a SIGKILL between its commit and the
    next step). Decide their waiting tasks and finish them; returns how many were stalled.
    Racing a live finisher is harmless: every move is a compare-and-set."""
    active = [str(s) for s in (TaskState.QUEUED, TaskState.RUNNING, TaskState.UP_FOR_RETRY)]
    busy = TaskInstance.select(TaskInstance.run).where(TaskInstance.state.in_(active))
    stalled = DagRun.select(DagRun.id).where(
        (DagRun.state == str(RunState.RUNNING)) & DagRun.id.not_in(busy)
    )

    def finish(run: DagRun) -> bool:
        waiting = TaskInstance.select(TaskInstance.task_id).where(
            (TaskInstance.run == run.id) & (TaskInstance.state == str(TaskState.NONE))
        )
        with db.atomic():
            evaluate(run.id, [ti.task_id for ti in waiting])
        maybe_finish_run(run.id)
        return True

    count = sweeps.each("reconciling stalled runs", stalled, finish)
    waiting_dags = (
        DagRun.select(DagRun.dag)
        .where((DagRun.state == str(RunState.QUEUED)) & DagRun.dag.is_null(False))
        .distinct()
    )
    # a queued run whose predecessor's finisher died first
    sweeps.each("starting queued runs", list(waiting_dags.scalars()), start_queued_runs)
    return count


def run_finished(run_id: int) -> None:
    """After a run reached its final state (whoever moved it): its callback, then the DAG's
    next queued run."""
    run = DagRun.get_by_id(run_id)
    if run.callback_url:
        callbacks.schedule(run_id)
    if run.dag_id is None:
        return
    start_queued_runs(run.dag_id)
    spec = DagVersion.get_by_id(run.dag_version_id).spec
    callback = spec.get("on_success") if run.state == RunState.SUCCESS else spec.get("on_failure")
    if callback and run.state != RunState.CANCELLED:
        try:
            _call_back(callback, run)
        except Exception:  # noqa: BLE001 - a broken callback must not undo the run's end
            log.exception("the %s callback of run %s could not start", callback, run_id)


def _call_back(function_name: str, run: DagRun) -> None:
    """Start ``function_name`` with the summary of ``run``, a DAG's run that just ended."""
    dag = run.dag
    assert dag is not None  # run_finished calls back only for a DAG's run
    failed = (
        TaskInstance.select(TaskInstance.task_id)
        .where(
            (TaskInstance.run == run.id) & TaskInstance.state.in_([str(s) for s in FAILED_STATES])
        )
        .order_by(TaskInstance.id)
    )
    summary = {
        "dag_id": dag.dag_id,
        "run_id": run.id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": isoformat(run.logical_date),
        "failed_tasks": [ti.task_id for ti in failed],
        "url": f"/api/v1/runs/{run.id}",
    }
    callback_run = run_factory.create_invoke_run(function_name, summary, run_type="callback")
    start_run(callback_run.id)


def release_retry(ti_id: int, try_number: int, now: datetime | None = None) -> bool:
    """Queue a try waiting in up_for_retry once its delay has passed (a message that comes
    early schedules itself again for the right time); True if it was queued."""
    ti = TaskInstance.get_or_none(
        (TaskInstance.id == ti_id)
        & (TaskInstance.try_number == try_number)
        & (TaskInstance.state == str(TaskState.UP_FOR_RETRY))
    )
    if ti is None:
        return False
    due = ti.next_try_at  # None only for a row written without one: due at once
    if due is None or due <= (now or utcnow()):
        return states.queue_task(ti)
    outbox.retry_due(ti_id, try_number, due)
    return False
