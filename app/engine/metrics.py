"""Prometheus metrics: counters kept in the database (so every process adds to the same
ones), and gauges read at scrape time from the runs, task instances and the queue.

A scrape reads counters and indexes, never the history: the try-duration histogram is
counted as each try ends (``observe_try``), and the by-state gauges are counted from indexes
that hold the state (dag_run (state), task_instance (state, queued_at)) without the rows.
"""

from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime

import peewee

from app.store.db import Compiled, Slot
from app.store.models import (
    SLOWEST_BUCKET,
    TRY_DURATION_BOUNDS,
    DagRun,
    Metric,
    TaskInstance,
    TryDuration,
)

HISTOGRAM_SHARDS = 16  # rows per bucket of TryDuration, chosen by the task instance's id
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
    """COUNT(*), not COUNT(id): an index holding the state answers it alone."""
    count = peewee.fn.COUNT(peewee.SQL("*")).alias("n")
    rows = model.select(model.state, count).group_by(model.state)
    samples = [(f'{{state="{row.state}"}}', row.n) for row in rows.order_by(model.state)]
    _metric(lines, name, "gauge", help_text, samples)


def observe_try(ti_id: int, started_at: datetime | None, finished_at: datetime) -> None:
    """Count a try that ended, of task instance ``ti_id``, in the duration histogram. Call
    it in the transaction that keeps the try in task_try (app/engine/outcomes.py), so the
    try is counted once, with it. A try that never started (handed back before it ran) has
    no duration and is not counted."""
    if started_at is None:
        return
    seconds = (finished_at - started_at).total_seconds()
    _OBSERVE.rowcount(le=bucket_of(seconds), shard=ti_id % HISTOGRAM_SHARDS, seconds=seconds)


def bucket_of(seconds: float) -> str:
    """The ``le`` of the histogram bucket a try of ``seconds`` is counted in."""
    index = bisect_left(TRY_DURATION_BOUNDS, seconds)
    return str(TRY_DURATION_BOUNDS[index]) if index < len(TRY_DURATION_BOUNDS) else SLOWEST_BUCKET


_OBSERVE = Compiled(
    lambda: TryDuration.insert(
        le=Slot("le", TryDuration.le),
        shard=Slot("shard", TryDuration.shard),
        tries=1,
        seconds=Slot("seconds", TryDuration.seconds),
    ).on_conflict(
        conflict_target=[TryDuration.le, TryDuration.shard],
        update={
            TryDuration.tries: TryDuration.tries + 1,
            TryDuration.seconds: TryDuration.seconds + peewee.EXCLUDED.seconds,
        },
    )
)


def _durations(lines) -> None:
    """The histogram of every try counted (TryDuration): its buckets made cumulative."""
    tries = peewee.fn.SUM(TryDuration.tries).alias("tries")
    seconds = peewee.fn.SUM(TryDuration.seconds).alias("seconds")
    rows = TryDuration.select(TryDuration.le, tries, seconds).group_by(TryDuration.le)
    counted = {row.le: (row.tries, row.seconds) for row in rows}
    samples: list[tuple[str, float]] = []
    below = 0
    for bound in map(str, TRY_DURATION_BOUNDS):
        below += counted.get(bound, (0, 0))[0]
        samples.append((f'_bucket{{le="{bound}"}}', below))
    count = sum(tries for tries, _ in counted.values())
    total = sum(seconds for _, seconds in counted.values())
    samples += [(f'_bucket{{le="{SLOWEST_BUCKET}"}}', count), ("_sum", total), ("_count", count)]
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
