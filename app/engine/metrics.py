"""Prometheus metrics: counters kept in the database (so every process adds to the same
ones), and gauges read at scrape time from the runs, task instances and the queue."""

from collections.abc import Callable

import peewee

from app.store.db import db, is_postgres
from app.store.models import DagRun, Metric, TaskInstance, TaskTry

# The upper bounds, seconds, of the task duration histogram's buckets (part of its name).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
COUNTERS = {  # name -> help text, as /metrics shows them
    "messages_dropped_total": "Queue messages the claim discarded (duplicate or stale).",
    "heartbeats_reaped_total": "Running tries failed because their worker stopped heartbeating.",
    "lost_messages_requeued_total": "Queued tries whose message was lost, enqueued again.",
    "ticks_total": "Clock ticks run.",
    "sweep_items_failed_total": "Rows a clock sweep could not handle, logged and skipped.",
    "callbacks_refused_total": "Callbacks refused: their URL led to an address not allowed.",
}
GAUGES = {  # name -> help text
    "tick_duration_seconds": "How long the last clock tick took.",
    "tick_last_timestamp_seconds": "When the last clock tick ended (Unix time).",
}


def add(name: str, amount: float = 1) -> None:
    """Add to a counter, atomically, whichever process does it."""
    (
        Metric.insert(name=name, value=amount)
        .on_conflict(conflict_target=[Metric.name], update={Metric.value: Metric.value + amount})
        .execute()
    )


def set_gauge(name: str, value: float) -> None:
    Metric.insert(name=name, value=value).on_conflict(
        conflict_target=[Metric.name], update={Metric.value: value}
    ).execute()


def render(queue_counts: Callable[[], tuple[int, int]] | None = None) -> str:
    """The Prometheus text exposition. ``queue_counts`` answers (messages waiting, messages
    waiting for their ETA) of the worker queue; an unreachable queue leaves them out."""
    lines: list[str] = []
    _by_state(lines, "brisa_runs", "Runs by state.", DagRun)
    _by_state(lines, "brisa_task_instances", "Task instances by state.", TaskInstance)
    _durations(lines)
    if queue_counts is not None:
        _queue(lines, queue_counts)
    stored = {row.name: row.value for row in Metric.select()}
    for name, help_text in COUNTERS.items():
        _metric(lines, f"brisa_{name}", "counter", help_text, [("", stored.get(name, 0))])
    for name, help_text in GAUGES.items():
        if name in stored:
            _metric(lines, f"brisa_{name}", "gauge", help_text, [("", stored[name])])
    return "\n".join(lines) + "\n"


def _metric(lines, name, kind, help_text, samples) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {_number(value)}" for labels, value in samples]


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _by_state(lines, name, help_text, model) -> None:
    rows = model.select(model.state, peewee.fn.COUNT(model.id).alias("n")).group_by(model.state)
    samples = [(f'{{state="{row.state}"}}', row.n) for row in rows.order_by(model.state)]
    _metric(lines, name, "gauge", help_text, samples)


def _durations(lines) -> None:
    """A histogram of every finished try's duration still in the database."""
    seconds = peewee.SQL(
        "EXTRACT(EPOCH FROM (finished_at - started_at))"
        if is_postgres()
        else "(julianday(finished_at) - julianday(started_at)) * 86400"
    )
    columns = [
        peewee.fn.SUM(peewee.Case(None, [(seconds <= bound, 1)], 0)) for bound in DURATION_BUCKETS
    ]
    query = TaskTry.select(*columns, peewee.fn.COUNT(TaskTry.id), peewee.fn.SUM(seconds)).where(
        TaskTry.started_at.is_null(False)
    )
    *buckets, count, total = db.execute(query).fetchone()
    samples = [
        (f'_bucket{{le="{b}"}}', n or 0) for b, n in zip(DURATION_BUCKETS, buckets, strict=True)
    ]
    samples += [('_bucket{le="+Inf"}', count), ("_sum", total or 0), ("_count", count)]
    lines += [
        "# HELP brisa_task_duration_seconds Duration of finished tries.",
        "# TYPE brisa_task_duration_seconds histogram",
    ]
    lines += [f"brisa_task_duration_seconds{suffix} {_number(value)}" for suffix, value in samples]


def _queue(lines, queue_counts: Callable[[], tuple[int, int]]) -> None:
    try:
        pending, waiting_eta = queue_counts()
        depth, scheduled = [("", pending)], [("", waiting_eta)]
    except Exception:  # noqa: BLE001 - an unreachable queue leaves these out, not the page
        return
    _metric(lines, "brisa_queue_depth", "gauge", "Messages waiting in the worker queue.", depth)
    _metric(lines, "brisa_queue_scheduled", "gauge", "Messages waiting for their ETA.", scheduled)
