"""Creating runs (trigger, invoke), reading them, cancelling them, clearing tasks."""

import time
from datetime import UTC, datetime

import peewee

from app.config import current
from app.domain import schedule
from app.domain.errors import Conflict, Invalid, NotFound
from app.engine import dags, dispatch, run_factory
from app.store import outbox
from app.store import transitions as states
from app.store.db import Compiled, Slot, db
from app.store.models import (
    Dag,
    DagRun,
    DagVersion,
    Function,
    FunctionVersion,
    TaskInstance,
    TaskLog,
    TaskTry,
)
from app.store.transitions import RunState, TaskState


def trigger(
    dag_id: str,
    conf=None,
    run_type: str = "manual",
    logical_date=None,
    key=None,
    interval=None,
    trigger=None,
    dag=None,
):
    """Create a run of the DAG's current version, pinned to the function versions it resolves
    now; it starts at once unless max_active_runs is reached or the DAG is paused (then it
    waits ``queued``). ``key`` is an idempotency key: a second trigger with the same key
    returns the first run, not created (False). ``dag``: the Dag, if the caller has it."""
    dag = dag or dags.get(dag_id)
    version = dags.current_version(dag)
    if version is None:  # never: a DAG is created with its first version, in one transaction
        raise NotFound(f"DAG {dag_id!r} has no version")
    try:
        run = dispatch.create_dag_run(
            dag,
            version,
            run_type,
            logical_date,
            conf=conf,
            key=key,
            interval=interval,
            trigger=trigger,
        )
    except peewee.IntegrityError:
        existing = DagRun.get_or_none(DagRun.idempotency_key == key) if key else None
        if existing is None:
            raise Conflict(f"DAG {dag_id!r} already has a run for {logical_date}") from None
        return existing, False
    return get(run.id), True


def create_scheduled(dag_id: str, due, run_type: str = "scheduled") -> DagRun | None:
    """The run for one due time (a schedule.Due), or None if it exists already: the unique
    index on (dag, logical_date) makes this exactly once, however many clocks try."""
    try:
        run, _ = trigger(
            dag_id,
            run_type=run_type,
            logical_date=due.logical_date,
            interval=(due.data_interval_start, due.data_interval_end),
        )
    except Conflict:
        return None
    return run


def backfill(dag_id: str, start: datetime, end: datetime) -> list[DagRun]:
    """A run for every time the schedule fell due in [start, end]; existing ones are kept."""
    if start is None or end is None or start > end:
        raise Invalid([{"field": "end", "message": "start and end are required, start <= end"}])
    spec = dags.spec_of(dags.get(dag_id))
    try:
        dates = schedule.backfill_dates(spec, start, end)
    except ValueError as exc:
        raise Invalid([{"field": "", "message": str(exc)}]) from None
    created = (create_scheduled(dag_id, schedule.interval_for(spec, d), "backfill") for d in dates)
    return [run for run in created if run is not None]


def invoke(name: str, event, run_type: str = "invoke", callback_url: str | None = None) -> DagRun:
    """Run one function now as a one-task run; ``event`` becomes the run's conf. With
    ``callback_url``, the outcome is POSTed there when the run ends (app/engine/callbacks.py)."""
    with db.atomic():
        run = run_factory.create_invoke_run(name, event, run_type, callback_url)
        dispatch.start_run(run.id)
    return get(run.id)


def wait_until_finished(run_id: int, seconds: float) -> DagRun:
    """Wait until the run is finished or ``seconds`` pass; returns it either way. Woken by
    the run's end notice where the queue carries them (Redis), else by polls a millisecond
    apart growing to BRISA_INVOKE_POLL_S (app/store/outbox.py's RunWatch)."""
    deadline = time.monotonic() + seconds
    watch = outbox.get_transport().watch_run(run_id, current().invoke_poll_s)
    try:
        while _RUN_STATE.first(run_id=run_id) not in RUN_FINISHED_STATES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            watch.wait(left)
    finally:
        watch.close()
    return get(run_id)


_RUN = Compiled(lambda: DagRun.select().where(DagRun.id == Slot("run_id")).limit(1))
_RUN_STATE = Compiled(
    lambda: DagRun.select(DagRun.state).where(DagRun.id == Slot("run_id")).tuples()
)
RUN_FINISHED_STATES = {(str(state),) for state in states.RUN_FINISHED}  # as rows of _RUN_STATE


def get(run_id: int) -> DagRun:
    run = _RUN.first(run_id=run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def shown(run_id: int) -> DagRun:
    """``get``, with what serialize.run shows of the run's DAG, DAG version and function in
    the same query (``shown_runs``)."""
    run = _SHOWN.first(run_id=run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


def shown_runs() -> "peewee.ModelSelect[DagRun]":
    """Runs with what serialize.run shows of their DAG (its dag_id), DAG version (its
    number, not its spec: a big DAG's is tens of KB) and function (its name) joined in, so
    serializing a page of them makes no query per run. Those of an invoke's run (no DAG)
    or a DAG's run (no function) hold nulls."""
    return (
        DagRun.select(DagRun, Dag.id, Dag.dag_id, DagVersion.id, DagVersion.version)
        .select_extend(Function.id, Function.name)
        .join_from(DagRun, Dag, peewee.JOIN.LEFT_OUTER)
        .join_from(DagRun, DagVersion, peewee.JOIN.LEFT_OUTER)
        .join_from(DagRun, Function, peewee.JOIN.LEFT_OUTER)
    )


_SHOWN = Compiled(lambda: shown_runs().where(DagRun.id == Slot("run_id")))


def last_runs(dag_pks: list[int] | None = None) -> dict[int | None, DagRun]:
    """The newest run of each DAG (of those whose keys are ``dag_pks``, else of every DAG),
    by the DAG's key, as ``shown_runs``: one query, one probe of dag_run's (dag_id, id)
    index per DAG."""
    each_dag, newest = Dag.alias("each_dag"), DagRun.alias("newest")
    latest = newest.select(peewee.fn.MAX(newest.id)).where(newest.dag == each_dag.id)
    ids = each_dag.select(latest)
    if dag_pks is not None:
        ids = ids.where(each_dag.id.in_(dag_pks))
    return {run.dag_id: run for run in shown_runs().where(DagRun.id.in_(ids))}


def task_instances(run: DagRun) -> list[TaskInstance]:
    """The run's task instances with their function version's number and function's name
    (what serialize shows of them) in the same query; no other column of the version."""
    return _TASK_INSTANCES.rows(run_id=run.id)


_TASK_INSTANCES = Compiled(
    lambda: (
        TaskInstance.select(TaskInstance, FunctionVersion.id, FunctionVersion.version)
        .select_extend(FunctionVersion.function, Function.id, Function.name)
        .join(FunctionVersion)
        .join(Function)
        .where(TaskInstance.run == Slot("run_id"))
        .order_by(TaskInstance.id)
    )
)


def task_instance(run_id: int, task_id: str) -> TaskInstance:
    ti = TaskInstance.get_or_none((TaskInstance.run == run_id) & (TaskInstance.task_id == task_id))
    if ti is None:
        raise NotFound(f"run {run_id} has no task {task_id!r}")
    return ti


def list_for_dag(dag: Dag, state=None, limit: int = 25, before_id: int | None = None):
    """A page of the DAG's runs, newest first, as ``shown_runs`` (one query, by the index on
    dag_run (dag_id, state, id) or (dag_id, id))."""
    query = shown_runs().where(DagRun.dag == dag)
    if state:
        query = query.where(DagRun.state == state)
    if before_id:
        query = query.where(DagRun.id < before_id)
    return list(query.order_by(DagRun.id.desc()).limit(limit))


def logs(ti: TaskInstance, try_number: int, offset: int) -> tuple[str, int]:
    """The log of one try from chunk ``offset`` on; returns (text, next offset) to tail it."""
    chunks = list(
        TaskLog.select(TaskLog.seq, TaskLog.chunk)
        .where(
            (TaskLog.task_instance == ti)
            & (TaskLog.try_number == try_number)
            & (TaskLog.seq >= offset)
        )
        .order_by(TaskLog.seq)
    )
    next_offset = chunks[-1].seq + 1 if chunks else offset
    return "".join(c.chunk for c in chunks), next_offset


def cancel(run_id: int) -> DagRun:
    """Cancel a queued or running run (Conflict otherwise): its unfinished task instances
    are cancelled, and this returns once the tries that were running have ended (their
    workers kill their processes and keep each try in the history as cancelled), waiting
    at most ``stop_wait_s()``."""
    run = get(run_id)
    running = _running_tries([run_id])
    if not states.cancel_run(run.id):
        state = get(run_id).state
        raise Conflict(f"run {run_id} is {state}; only a queued or running run can be cancelled")
    dispatch.run_finished(run.id)
    wait_for_tries_to_end(running)
    return get(run_id)


LIVE_RUN_STATES = [str(RunState.QUEUED), str(RunState.RUNNING)]


def stop_wait_s() -> float:
    """How long a cancel waits for running tries to end: a worker notices at its next
    heartbeat (BRISA_HEARTBEAT), then kills the try's process at once."""
    return 2 * current().heartbeat_s + 5


def _running_tries(run_ids: list[int]) -> list[tuple[int, int]]:
    """(task instance id, try number) of each try running in ``run_ids``."""
    query = TaskInstance.select(TaskInstance.id, TaskInstance.try_number).where(
        TaskInstance.run.in_(run_ids) & (TaskInstance.state == str(TaskState.RUNNING))
    )
    return [(ti.id, ti.try_number) for ti in query]


def wait_for_tries_to_end(tries: list[tuple[int, int]]) -> bool:
    """Wait until each (task instance id, try number) is in the try history, or its task
    instance is gone; False if some were not after ``stop_wait_s()`` (a worker that died
    is the clock's to reap)."""
    deadline = time.monotonic() + stop_wait_s()
    pending = set(tries)
    while pending := _not_ended(pending):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _not_ended(tries: set[tuple[int, int]]) -> set[tuple[int, int]]:
    if not tries:
        return tries
    ids = sorted({ti for ti, _ in tries})
    history = TaskTry.select(TaskTry.task_instance, TaskTry.try_number)
    ended = {
        (t.task_instance_id, t.try_number) for t in history.where(TaskTry.task_instance.in_(ids))
    }
    alive = TaskInstance.select(TaskInstance.id).where(TaskInstance.id.in_(ids))
    existing = {ti.id for ti in alive}
    return {t for t in tries if t not in ended and t[0] in existing}


def cancel_live_runs(run_ids: list[int]) -> None:
    """Cancel each run still queued or running, then wait for their running tries to end
    (see ``cancel``)."""
    running = _running_tries(run_ids)
    for run_id in run_ids:
        if states.cancel_run(run_id):
            dispatch.run_finished(run_id)
    wait_for_tries_to_end(running)


def clear(run_id: int, task_id: str, downstream: bool) -> list[str]:
    """Rerun a finished task (and, with ``downstream``, everything after it)."""
    ti = task_instance(run_id, task_id)
    if ti.state not in states.TASK_FINISHED:
        raise Conflict(f"task {task_id!r} is {ti.state}; only a finished task can be cleared")
    task_ids = [task_id] + (_all_downstream(run_id, task_id) if downstream else [])
    _clear(run_id, task_ids)
    return task_ids


def rerun_failed(run_id: int) -> list[str]:
    """Clear the failed, upstream_failed and cancelled tasks of a run, so they run again."""
    get(run_id)
    again = [str(s) for s in (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED)]
    rows = (
        TaskInstance.select(TaskInstance.task_id)
        .where((TaskInstance.run == run_id) & TaskInstance.state.in_(again))
        .order_by(TaskInstance.id)
    )
    task_ids = [row.task_id for row in rows]
    if not task_ids:
        raise Conflict(f"run {run_id} has no failed tasks to rerun")
    _clear(run_id, task_ids)
    return task_ids


def _clear(run_id: int, task_ids: list[str]) -> None:
    with db.atomic():
        states.clear_tasks(run_id, task_ids)
        _reopen_decided_downstream(run_id, task_ids)
        states.reopen_run(run_id)
        dispatch.evaluate(run_id, task_ids)


def mark(run_id: int, task_id: str, target: str) -> TaskInstance:
    """Mark a task instance success or failed; its successors are decided again (those a
    trigger rule had decided not to run, too) and the run follows."""
    if target not in (TaskState.SUCCESS, TaskState.FAILED):
        raise Invalid([{"field": "state", "message": "must be success or failed"}])
    ti = task_instance(run_id, task_id)
    if ti.state == target:
        return ti
    with db.atomic():
        states.mark(ti.id, TaskState(target))
        _reopen_decided_downstream(run_id, [task_id])
        states.reopen_run(run_id)
    dispatch.task_finished(run_id, ti.downstream)
    return task_instance(run_id, task_id)


def _reopen_decided_downstream(run_id: int, origins: list[str]) -> list[str]:
    """Back to none, the tasks after ``origins`` that never ran because of them: decided
    upstream_failed or skipped by a trigger rule, or skipped by a branch among ``origins``
    (and so on down). They are decided again when ``origins`` finish, so clearing a failed
    ``a`` of ``a -> b`` runs ``b`` too. Tasks that ran keep their outcome (clear them with
    ``downstream``, as in Airflow)."""
    rows = {ti.task_id: ti for ti in _DECIDED.rows(run_id=run_id)}
    branch_reasons = {dispatch.not_chosen_by(task_id) for task_id in origins}
    reopened: list[str] = []
    pending = [d for origin in origins for d in rows[origin].downstream]
    while pending:
        ti = rows[pending.pop()]
        if ti.task_id in reopened or ti.task_id in origins:
            continue
        if _decided_not_to_run(ti, branch_reasons):
            reopened.append(ti.task_id)
            pending.extend(ti.downstream)
    states.reopen_not_run(run_id, reopened)
    return reopened


def _decided_not_to_run(ti: TaskInstance, branch_reasons: set[str]) -> bool:
    if ti.state == TaskState.UPSTREAM_FAILED:
        return True
    never_ran = ti.state == TaskState.SKIPPED and ti.started_at is None
    return never_ran and (ti.error is None or ti.error in branch_reasons)


_DECIDED = Compiled(
    lambda: TaskInstance.select(
        *(TaskInstance.task_id, TaskInstance.downstream, TaskInstance.state),
        *(TaskInstance.error, TaskInstance.started_at),
    ).where(TaskInstance.run == Slot("run_id"))
)


def _all_downstream(run_id: int, task_id: str) -> list[str]:
    graph = {
        row.task_id: row.downstream
        for row in TaskInstance.select(TaskInstance.task_id, TaskInstance.downstream).where(
            TaskInstance.run == run_id
        )
    }
    seen, pending = [], list(graph[task_id])
    while pending:
        current = pending.pop(0)
        if current not in seen:
            seen.append(current)
            pending.extend(graph[current])
    return seen


def parse_date(value, field: str) -> datetime | None:
    """An ISO-8601 date-time from a request as naive UTC (a naive one is taken as UTC), in
    the years 1970-2999."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None or not 1970 <= parsed.year <= 2999:
        message = "must be an ISO-8601 date-time in the years 1970-2999"
        raise Invalid([{"field": field, "message": message}]) from None
    return parsed
