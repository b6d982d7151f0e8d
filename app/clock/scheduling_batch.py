"""The database side of the clock's tick, in bulk: the due DAGs, their runs and task
instances, and the runs that may start, in a few statements for hundreds of DAGs (creating
one run at a time costs about twenty).

Exactly once is still the database's: runs are inserted with ON CONFLICT DO NOTHING (on
SQLite, INSERT OR IGNORE) against the unique index on (dag, logical_date), and RETURNING
(SQLite 3.35+) names the rows this clock inserted, so two clocks racing create each run once.
Starting runs keeps dispatch.start_queued_runs's guarantees: each DAG's advisory lock
RUN_STARTS lock on Postgres (taken in ascending DAG order, so two tickers never deadlock),
SQLite's write lock otherwise; every state change is a compare-and-set in app/store/transitions.py.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from peewee import Case, Value, chunked, fn

from app.domain.schedule import Due
from app.domain.timeutil import utcnow
from app.engine import run_factory
from app.store import locks
from app.store import transitions as states
from app.store.db import db, is_postgres
from app.store.models import Dag, DagRun, DagVersion, Function, FunctionVersion, TaskInstance
from app.store.transitions import RunState

log = logging.getLogger(__name__)

DAGS_PER_BATCH = 500  # DAGs per transaction: bounds every IN (...) list and lock set
# Rows per INSERT: 500 x 18 columns stays under SQLite's 32,766 variables (SQLite 3.32+;
# RETURNING needs 3.35 anyway) and Postgres's 65,535.
ROWS_PER_INSERT = 500


@dataclass(frozen=True)
class DueDag:
    """A DAG the tick schedules, with its current version and its last scheduled run."""

    pk: int
    dag_id: str
    created_at: datetime
    version_pk: int
    spec: dict  # the current version's stored spec
    last_scheduled: datetime | None  # the latest logical_date of its scheduled runs


@dataclass(frozen=True)
class Plan:
    """What the tick does for one due DAG, as app/domain/schedule.py decided it."""

    dag: DueDag
    due: list[Due]  # the runs to create, oldest first
    next_run_at: datetime | None
    send_at: datetime | None  # the next due time, if it falls before the next tick


def due_dags(until: datetime) -> list[DueDag]:
    """The unpaused DAGs whose next_run_at is at or before ``until``, in one query."""
    last = DagRun.select(fn.MAX(DagRun.logical_date)).where(
        (DagRun.dag == Dag.id) & (DagRun.run_type == "scheduled")
    )
    columns = (Dag.id, Dag.dag_id, Dag.created_at, DagVersion.id, DagVersion.spec, last)
    query = _with_current_version(*columns).where(
        (Dag.paused == False)  # noqa: E712 - peewee builds SQL from the comparison
        & Dag.next_run_at.is_null(False)
        & (Dag.next_run_at <= until)
    )
    as_date = DagRun.logical_date.python_value  # SQLite returns the subquery's MAX as text
    return [DueDag(*row[:-1], as_date(row[-1])) for row in query.tuples()]


def _with_current_version(*columns):
    """DAGs joined to their latest version, in DAG order."""
    latest = DagVersion.alias()
    newest = latest.select(fn.MAX(latest.version)).where(latest.dag == Dag.id)
    on = (DagVersion.dag == Dag.id) & (DagVersion.version == newest)
    return Dag.select(*columns).join(DagVersion, on=on).order_by(Dag.id)


# Creating runs --------------------------------------------------------------------------


def create_runs(plans: list[Plan]) -> list[DagRun]:
    """Insert the plans' runs (queued) with their task instances, and move each DAG's
    next_run_at, in one transaction; returns the runs inserted (id, dag_id, logical_date).
    A run that exists already is left alone. A DAG whose functions no longer resolve gets
    no runs and keeps its next_run_at, so it stays due and is tried again next tick."""
    with db.atomic():
        plans = _lock_dags(plans)
        pins = _pin_versions([plan for plan in plans if plan.due])
        plans = [plan for plan in plans if plan.dag.pk in pins or not plan.due]
        created = _insert_runs(plans, utcnow())
        _insert_task_instances(created, {plan.dag.pk: plan.dag.spec for plan in plans}, pins)
        _move_next_run_at(plans)
    return created


def _lock_dags(plans: list[Plan]) -> list[Plan]:
    """The plans whose DAG still exists, its row locked until the commit in ascending order
    (on SQLite, the write lock holds everyone off): a DAG deleted meanwhile cannot break the
    inserts, and two clocks scheduling the same DAGs take turns. FOR NO KEY UPDATE leaves
    alone the key-share lock that inserting any run takes on its DAG."""
    query = Dag.select(Dag.id).where(Dag.id.in_([plan.dag.pk for plan in plans]))
    if is_postgres():
        query = query.order_by(Dag.id).for_update("FOR NO KEY UPDATE")
    existing = {pk for (pk,) in query.tuples()}
    return [plan for plan in plans if plan.dag.pk in existing]


def _pin_versions(plans: list[Plan]) -> dict[int, dict[str, FunctionVersion]]:
    """Each DAG's {task_id: function version}, as runs.trigger pins them (the task's
    ``version``, else the latest), resolved for all the DAGs in one query. A DAG naming a
    version that does not exist (any more) is left out, with a warning."""
    found = _function_versions({_wanted(t) for plan in plans for t in plan.dag.spec["tasks"]})
    pins = {}
    for plan in plans:
        tasks = plan.dag.spec["tasks"]
        missing = {_wanted(t) for t in tasks} - found.keys()
        if missing:
            names = ", ".join(f"{name} (version {number or 'latest'})" for name, number in missing)
            log.warning("DAG %s: no run created, missing functions: %s", plan.dag.dag_id, names)
            continue
        pins[plan.dag.pk] = {t["task_id"]: found[_wanted(t)] for t in tasks}
    return pins


def _wanted(task: dict) -> tuple[str, int | None]:
    """The function version a task names: (name, its pinned number or None: the latest)."""
    return task["function"], task.get("version")


def _function_versions(wanted: set) -> dict[tuple[str, int | None], FunctionVersion]:
    """The ``wanted`` versions (see _wanted) that exist, in one query: those numbered and
    the latest of every function named. Only the columns a task instance copies."""
    if not wanted:
        return {}
    numbers = sorted({number for _, number in wanted if number is not None})
    other = FunctionVersion.alias()
    latest = other.select(fn.MAX(other.version)).where(other.function == FunctionVersion.function)
    which = FunctionVersion.version == latest
    if numbers:
        which |= FunctionVersion.version.in_(numbers)
    query = (
        FunctionVersion.select(
            FunctionVersion.id, FunctionVersion.version, FunctionVersion.timeout, Function.name
        )
        .join(Function)
        .where(Function.name.in_(sorted({name for name, _ in wanted})) & which)
        .order_by(FunctionVersion.version)
    )
    found = {}
    for version in query:  # oldest first: the latest of each function is its last
        found[(version.function.name, version.version)] = version
        found[(version.function.name, None)] = version
    return found


def _insert_runs(plans: list[Plan], now: datetime) -> list[DagRun]:
    """Insert every due run the database does not hold yet; returns those inserted. Sorted,
    so two clocks inserting the same runs wait for each other in one order, never in a
    cycle."""
    rows = sorted(
        (_run_row(plan.dag, due, now) for plan in plans for due in plan.due),
        key=lambda row: (row["dag"], row["logical_date"]),
    )
    created = []
    for batch in chunked(rows, ROWS_PER_INSERT):
        query = DagRun.insert_many(batch).on_conflict_ignore()
        created += query.returning(DagRun.id, DagRun.dag, DagRun.logical_date).execute()
    return created


def _run_row(dag: DueDag, due: Due, now: datetime) -> dict:
    """A scheduled run of the DAG's current version, as runs.create_scheduled makes it."""
    return states.new_run(
        dag=dag.pk,
        dag_version=dag.version_pk,
        max_active_tasks=dag.spec.get("max_active_tasks"),
        run_type="scheduled",
        logical_date=due.logical_date,
        data_interval_start=due.data_interval_start,
        data_interval_end=due.data_interval_end,
        created_at=now,
    )


def _insert_task_instances(created: list[DagRun], specs: dict, pins: dict) -> None:
    rows = [
        row
        for run in created
        for row in run_factory.task_instance_rows(run, specs[run.dag_id]["tasks"], pins[run.dag_id])
    ]
    for batch in chunked(rows, ROWS_PER_INSERT):
        TaskInstance.insert_many(batch).as_rowcount().execute()


def _move_next_run_at(plans: list[Plan]) -> None:
    """Every DAG's next_run_at in one UPDATE (a CASE on the DAG's id)."""
    if not plans:
        return
    as_column = Dag.next_run_at.db_value
    moves = [(plan.dag.pk, Value(plan.next_run_at, converter=as_column)) for plan in plans]
    # ELSE the column itself (never reached) gives the CASE its type when every value is NULL.
    query = Dag.update(next_run_at=Case(Dag.id, moves, Dag.next_run_at))
    query.where(Dag.id.in_([pk for pk, _ in moves])).execute()


# Starting runs --------------------------------------------------------------------------


def start_queued_runs(dag_pks: set[int]) -> list[int]:
    """dispatch.start_queued_runs for many DAGs in one transaction: start each DAG's oldest
    queued runs while fewer than its max_active_runs are running (none while it is paused),
    and queue their first tasks, enqueued after the commit. Returns the runs started."""
    pks = sorted(dag_pks)
    if not pks:
        return []
    with db.atomic():
        _lock_run_starts(pks)
        query = _with_current_version(Dag.id, Dag.paused, DagVersion.spec).where(Dag.id.in_(pks))
        specs = {pk: spec for pk, paused, spec in query.tuples() if not paused}
        if not specs:
            return []
        started = []
        for timeout_s, run_ids in _runs_to_start(specs).items():
            started += states.start_runs(run_ids, timeout_s)
        if started:
            states.queue_first_tasks(started)
    return started


def _lock_run_starts(pks: list[int]) -> None:
    """Each DAG's RUN_STARTS lock (as dispatch.start_queued_runs takes it), in the order
    given: ascending."""
    locks.take_many(locks.RUN_STARTS, pks)


def _runs_to_start(specs: dict[int, dict]) -> dict[float | None, list[int]]:
    """The queued runs that fit within their DAG's max_active_runs, oldest logical date
    first, by the dagrun_timeout their start sets."""
    running = dict(
        DagRun.select(DagRun.dag, fn.COUNT(DagRun.id))
        .where(DagRun.dag.in_(list(specs)) & (DagRun.state == str(RunState.RUNNING)))
        .group_by(DagRun.dag)
        .tuples()
    )
    room = {pk: spec["max_active_runs"] - running.get(pk, 0) for pk, spec in specs.items()}
    queued = (
        DagRun.select(DagRun.id, DagRun.dag)
        .where(DagRun.dag.in_(list(specs)) & (DagRun.state == str(RunState.QUEUED)))
        .order_by(DagRun.dag, DagRun.logical_date, DagRun.id)
        .tuples()
    )
    chosen = defaultdict(list)
    for run_id, pk in queued:
        if room[pk] > 0:
            room[pk] -= 1
            chosen[specs[pk].get("dagrun_timeout")].append(run_id)
    return chosen
