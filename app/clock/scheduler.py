"""The scheduler: which DAGs are due, creating their runs exactly once, and keeping each
DAG's ``next_run_at`` so a tick reads only the DAGs that are due.

What is due is decided by the pure functions in app/domain/schedule.py; the tick then writes every
due DAG's runs at once (app/clock/scheduling_batch.py); exactly once is the database's unique index
on (dag, logical_date).
"""

from datetime import datetime, timedelta

from peewee import chunked

from app.clock import scheduling_batch
from app.clock.scheduling_batch import DueDag, Plan
from app.domain import schedule
from app.domain.dagspec import DagSpec
from app.engine import dags, runs, sweeps
from app.store.models import Dag

# A tick runs every 60 s: what falls due before the next one is scheduled as an ETA message,
# so a run due at 10:00 is created at 10:00 (within huey's 1 s scheduler interval).
LOOKAHEAD = timedelta(seconds=75)


def schedule_due(now: datetime, schedule_at) -> int:
    """For every DAG due by ``now`` (or within LOOKAHEAD): create the runs now due (catchup
    decides how many) and start those its max_active_runs allows, hand the next due time
    within LOOKAHEAD to ``schedule_at(dag_id, logical_date)``, move next_run_at on. Returns
    the number of runs created."""
    created, timings = 0, {}
    due_dags = scheduling_batch.due_dags(now + LOOKAHEAD)
    for batch in chunked(due_dags, scheduling_batch.DAGS_PER_BATCH):
        plans = _plans(batch, now, timings)
        new_runs = scheduling_batch.create_runs(plans)
        for each in plans:
            if each.send_at is not None:
                schedule_at(each.dag.dag_id, each.send_at)
        scheduling_batch.start_queued_runs({run.dag_id for run in new_runs})
        created += len(new_runs)
    return created


def _plans(batch: list[DueDag], now: datetime, timings: dict) -> list[Plan]:
    """The plans of the DAGs in ``batch``; a DAG whose plan fails is logged and skipped."""
    plans: list[Plan] = []
    sweeps.each("planning due DAGs", batch, lambda dag: plans.append(plan(dag, now, timings)))
    return plans


def plan(dag: DueDag, now: datetime, timings: dict) -> Plan:
    """The runs due for ``dag`` at ``now``, its next due time, and whether that one falls
    before the next tick. ``timings`` keeps the answers of app/domain/schedule.py by their inputs
    for the DAGs that follow: croniter costs about a millisecond a DAG, and DAGs due at one
    tick often share a schedule."""
    spec = dags.parse_stored(dag.spec)
    key = _timing_inputs(spec, dag)
    if key not in timings:
        timings[key] = _timing(spec, dag.last_scheduled, now, dag.created_at)
    due, upcoming = timings[key]
    soon = upcoming is not None and upcoming <= now + LOOKAHEAD
    return Plan(dag, due, upcoming, upcoming if soon else None)


def _timing(spec: DagSpec, last: datetime | None, now: datetime, created_at: datetime):
    """(the runs due, the next due time after them), as schedule.py decides them."""
    due = schedule.due_runs(spec, last, now, created_at)
    last = due[-1].logical_date if due else last
    return due, schedule.next_fire_after(spec, max(now, last) if last else now)


def _timing_inputs(spec: DagSpec, dag: DueDag) -> tuple:
    """What _timing reads: the spec's schedule fields, the last scheduled run, and the
    DAG's creation, which counts only without a start_date."""
    created_at = dag.created_at if spec.start_date is None else None
    fields = (spec.schedule, spec.timezone, spec.start_date, spec.end_date, spec.catchup)
    return (*fields, dag.last_scheduled, created_at)


def create_due_run(dag_id: str, logical_date: datetime) -> bool:
    """The ETA message for one due time: create its run unless paused or already made."""
    dag = Dag.get_or_none(Dag.dag_id == dag_id)
    if dag is None or dag.paused:
        return False
    spec = dags.spec_of(dag)
    if logical_date not in schedule.fire_times_between(
        spec, logical_date - timedelta(microseconds=1), logical_date
    ):
        return False  # the schedule changed since this message was sent
    return runs.create_scheduled(dag_id, schedule.interval_for(spec, logical_date)) is not None
