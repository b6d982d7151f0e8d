"""The scheduler's database side: which DAGs are due, creating their runs exactly once, and
keeping each DAG's ``next_run_at`` so a tick reads only the DAGs that are due.

What is due is decided by the pure functions in app/schedule.py; exactly once is the
database's unique index on (dag, logical_date).
"""

from datetime import datetime, timedelta

from app import dispatch, runs, schedule
from app.dags import last_scheduled, spec_of
from app.models import Dag

# A tick runs every 60 s: what falls due before the next one is scheduled as an ETA message,
# so a run due at 10:00 is created at 10:00 (within huey's 1 s scheduler interval).
LOOKAHEAD = timedelta(seconds=75)


def due_dags(now: datetime):
    return Dag.select().where(
        (Dag.paused == False)  # noqa: E712 - peewee builds SQL from the comparison
        & Dag.next_run_at.is_null(False)
        & (Dag.next_run_at <= now + LOOKAHEAD)
    )


def schedule_dag(dag: Dag, now: datetime, schedule_at) -> int:
    """Create the runs now due (catchup decides how many), hand the next due time within
    LOOKAHEAD to ``schedule_at(dag_id, logical_date)``, move next_run_at on; returns the
    number of runs created."""
    spec = spec_of(dag)
    last = last_scheduled(dag)
    created = 0
    for due in schedule.due_runs(spec, last, now, dag.created_at):
        created += runs.create_scheduled(dag.dag_id, due) is not None
        last = due.logical_date
    upcoming = schedule.next_fire_after(spec, max(now, last) if last else now)
    if upcoming is not None and upcoming <= now + LOOKAHEAD:
        schedule_at(dag.dag_id, upcoming)
    Dag.update(next_run_at=upcoming).where(Dag.id == dag.id).execute()
    if created:
        dispatch.start_queued_runs(dag.id)
    return created


def create_due_run(dag_id: str, logical_date: datetime) -> bool:
    """The ETA message for one due time: create its run unless paused or already made."""
    dag = Dag.get_or_none(Dag.dag_id == dag_id)
    if dag is None or dag.paused:
        return False
    spec = spec_of(dag)
    if logical_date not in schedule.fire_times_between(
        spec, logical_date - timedelta(microseconds=1), logical_date
    ):
        return False  # the schedule changed since this message was sent
    return runs.create_scheduled(dag_id, schedule.interval_for(spec, logical_date)) is not None
