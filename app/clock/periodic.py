"""The clock process: huey's periodic scheduler runs ``tick`` every minute.

Run with ``huey_consumer app.clock.periodic.huey`` (see the Procfile). It has a queue of its
own, so a tick never waits behind thousands of task messages. Two clocks are safe: every change the
tick makes is a compare-and-set.
"""

import logging
import time
from datetime import datetime, timedelta

from huey import consumer, crontab

from app import broker
from app import log_setup as logs
from app.clock import scheduler
from app.config import current
from app.domain.outcomes import Outcome
from app.domain.timeutil import as_utc, ceil_second, utcnow
from app.engine import callbacks, dispatch, metrics, outcomes, retention, slots, sweeps
from app.store import transitions as states
from app.store.db import DB_ERRORS, db, discard_connection, ensure_bound
from app.store.models import DagRun, TaskInstance
from app.store.transitions import RunState, TaskState

log = logging.getLogger(__name__)

huey = broker.make_huey("brisa-clock", current())
broker.install()
huey.on_startup()(logs.configure)
# huey checks periodic tasks every 60 s; BRISA_TICK_SECONDS (a divisor of 60) ticks more often
# (the tests' fault injection uses 1 s). Only the clock process imports this module.
consumer.Scheduler.periodic_task_seconds = current().tick_s


# After a database outage, running tries could not heartbeat either: none is taken for dead
# until it has had a heartbeat timeout to report again (monotonic time, this process).
_reap_after = 0.0


@huey.periodic_task(crontab(minute="*"))
def periodic_tick() -> None:
    global _reap_after
    settings = current()
    ensure_bound()
    started = time.monotonic()
    try:
        with db.connection_context():
            reap = started >= _reap_after
            counts = tick(utcnow(), settings.queued_timeout_s, settings.heartbeat_timeout_s, reap)
            _record(counts, time.monotonic() - started)
    except DB_ERRORS:
        discard_connection()
        _reap_after = float("inf")
        log.warning("tick skipped: the database is unreachable")
        return
    if _reap_after == float("inf"):
        _reap_after = time.monotonic() + settings.heartbeat_timeout_s
    if any(counts.values()):
        log.info("tick in %.3fs: %s", time.monotonic() - started, counts)


def _record(counts: dict, took: float) -> None:
    metrics.add("ticks_total")
    metrics.add("heartbeats_reaped_total", counts["reaped"])
    metrics.add("lost_messages_requeued_total", counts["requeued"])
    metrics.set_gauge("tick_duration_seconds", took)
    metrics.set_gauge("tick_last_timestamp_seconds", time.time())


@huey.task()
def create_run_at(dag_id: str, logical_date: str) -> None:
    """Sent by a tick for a run falling due before the next tick, with that time as its ETA."""
    ensure_bound()
    with db.connection_context():
        scheduler.create_due_run(dag_id, datetime.fromisoformat(logical_date))


def schedule_run_at(dag_id: str, logical_date: datetime) -> None:
    create_run_at.schedule(
        (dag_id, logical_date.isoformat()), eta=as_utc(ceil_second(logical_date))
    )


@huey.periodic_task(crontab(minute="17", hour="3"))
def daily_prune() -> None:
    """With BRISA_RETENTION_DAYS set, delete older finished runs once a day."""
    days = current().retention_days
    if days:
        ensure_bound()
        with db.connection_context():
            deleted = retention.prune(timedelta(days=days), utcnow())
        log.info("pruned %d runs older than %d days", deleted, days)


def tick(
    now: datetime, queued_timeout_s: float, heartbeat_timeout_s: float = 30, reap: bool = True
) -> dict:
    """One pass of the scheduler, as of ``now``: fail tries whose worker died, finish what a
    dead worker left undispatched, time out runs, create due runs, and recover what the
    queue lost (tries, retries, callbacks)."""
    return {
        "reaped": reap_dead_tries(now - timedelta(seconds=heartbeat_timeout_s)) if reap else 0,
        "reconciled": dispatch.reconcile_stalled_runs(),
        "timed_out": time_out_runs(now),
        "runs_created": scheduler.schedule_due(now, schedule_run_at),
        "requeued": requeue_lost_messages(now - timedelta(seconds=queued_timeout_s), now),
        "retries_released": release_due_retries(now),
        "callbacks_resent": callbacks.resend_lost(now),
    }


def reap_dead_tries(silent_since: datetime) -> int:
    """Tries still running whose heartbeat stopped before ``silent_since``: their worker died
    or froze. Fail them into their retry policy; if the worker was only slow, its own late
    outcome is refused by the compare-and-set."""
    dead = TaskInstance.select().where(
        (TaskInstance.state == str(TaskState.RUNNING)) & (TaskInstance.heartbeat_at < silent_since)
    )

    def reap(ti: TaskInstance) -> bool:
        error = f"the worker {ti.worker} stopped heartbeating (dead or frozen)"
        try:
            reaped = outcomes.record_outcome(ti, ti.try_number, Outcome(False, error=error))
        except DB_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - a row that cannot be failed is failed for good
            log.exception("task instance %s: its reaped try could not be recorded", ti.id)
            reason = f"{error}; then Brisa could not record the failure: {exc!r}"[:500]
            reaped = outcomes.record_failure(ti, ti.try_number, reason)
        if not reaped:
            return False
        slots.wake(slots.gate_of(ti.id))
        return True

    return sweeps.each("reaping dead tries", dead, reap)


def time_out_runs(now: datetime) -> int:
    """Fail the runs past their dagrun_timeout, and what they still had going."""
    late = DagRun.select(DagRun.id, DagRun.timeout_at).where(
        (DagRun.state == str(RunState.RUNNING)) & (DagRun.timeout_at <= now)
    )

    def time_out(run: DagRun) -> bool:
        if not states.time_out_run(run.id, "the run exceeded its dagrun_timeout"):
            return False
        dispatch.run_finished(run.id)
        return True

    return sweeps.each("timing out runs", late, time_out)


def requeue_lost_messages(queued_before: datetime, now: datetime) -> int:
    """Tasks queued before ``queued_before``, still unclaimed and with no message waiting in
    the queue, lost theirs (Redis flushed, a worker killed after taking it): enqueue them
    again. A long backlog is not a loss: a message still waiting is left alone. A duplicate
    would be harmless anyway: the claim discards it."""
    stuck = TaskInstance.select(TaskInstance.id, TaskInstance.try_number).where(
        (TaskInstance.state == str(TaskState.QUEUED)) & (TaskInstance.queued_at < queued_before)
    )
    stuck = [(ti.id, ti.try_number) for ti in stuck]
    if not stuck:
        return 0
    waiting = broker.waiting_tries()
    lost = [key for key in stuck if key not in waiting]
    return sweeps.each(
        "requeueing lost messages",
        lost,
        lambda key: states.requeue_lost(key[0], key[1], queued_before, now),
    )


def release_due_retries(now: datetime) -> int:
    due = TaskInstance.select(TaskInstance.id, TaskInstance.try_number).where(
        (TaskInstance.state == str(TaskState.UP_FOR_RETRY)) & (TaskInstance.next_try_at <= now)
    )
    return sweeps.each(
        "releasing due retries", due, lambda ti: dispatch.release_retry(ti.id, ti.try_number, now)
    )
