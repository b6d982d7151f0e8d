"""When scheduled runs fall due: Airflow 3's CronTriggerTimetable semantics, as pure functions.

A run's logical_date is the instant its cron time came round (the 10:00 run has logical_date
10:00) and its data interval is [previous cron time, logical_date). Cron expressions are read
in the DAG's timezone. Times in and out are naive UTC datetimes, as Brisa stores them (aware
input is converted); inside, everything is aware UTC.

Daylight saving. croniter iterates tz-aware datetimes correctly except in two respects, which
`_Cron` fixes (checked minute by minute against a brute force in the tests):

* A wall time that happens twice (autumn) fires once, at its first occurrence, unless the
  expression runs every hour (hour field "*"): those follow real time, so the repeated hour
  runs again. croniter fires both occurrences, so `_counts` drops the second (Airflow's rule).
* get_prev can skip a fire time next to a DST change (seen with Lord Howe Island's half-hour
  change), so `at_or_before` uses it only to find a starting point and walks on with get_next.

A wall time skipped in spring fires once, at the first instant after the gap (croniter's own
behaviour): 02:30 on a day that jumps from 02:00 to 03:00 fires at 03:00.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from app.domain.dagspec import PRESETS

_TICK = timedelta(microseconds=1)  # "just before": fire times are whole minutes


@dataclass(frozen=True)
class Due:
    logical_date: datetime  # naive UTC
    data_interval_start: datetime  # naive UTC: the previous cron time
    data_interval_end: datetime  # == logical_date


def cron_for(schedule: str | None) -> str | None:
    """The cron expression of a schedule: presets are translated; None and '@once' have none."""
    return PRESETS[schedule] if schedule in PRESETS else schedule


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class _Cron:
    """A DAG's cron expression in its timezone, ignoring start/end dates; times are aware UTC."""

    def __init__(self, spec):
        self.expression = cron_for(spec.schedule)
        self.zone = ZoneInfo(spec.timezone)
        self.every_hour = croniter(self.expression).expanded[1] == ["*"]

    def _counts(self, t: datetime) -> bool:
        """False for the second occurrence of a repeated wall time, unless every hour runs."""
        return self.every_hour or t.astimezone(self.zone).replace(fold=0).astimezone(UTC) == t

    def _times(self, moment: datetime, forward: bool):
        iterator = croniter(self.expression, moment.astimezone(self.zone))
        step = iterator.get_next if forward else iterator.get_prev
        try:
            while True:
                t = step(datetime).astimezone(UTC)
                if self._counts(t):
                    yield t
        except CroniterBadDateError:  # no more matches, e.g. "0 0 30 2 *" never fires
            return

    def times_after(self, moment: datetime):
        """Fire times strictly after `moment`, oldest first, without end."""
        return self._times(moment, forward=True)

    def at_or_before(self, moment: datetime) -> datetime | None:
        """The latest fire time <= moment, found without iterating from anywhere far back."""
        t = next(self._times(moment, forward=False), None)
        while t is not None and (later := next(self.times_after(t), None)) and later <= moment:
            t = later
        return t


def _fire_times(spec, after: datetime, until: datetime | None, once_at: datetime | None = None):
    """Fire times t with after < t <= until within [start_date, end_date], oldest first.
    '@once' fires at `once_at`, by default start_date."""
    if spec.start_date is not None:
        after = max(after, spec.start_date - _TICK)
    ends = [u for u in (until, spec.end_date) if u is not None]
    until = min(ends) if ends else None
    if spec.schedule == "@once":
        once_at = once_at or spec.start_date
        times = [once_at] if once_at is not None and after < once_at else []
    elif spec.schedule is None:
        times = []
    else:
        times = _Cron(spec).times_after(after)
    return takewhile(lambda t: until is None or t <= until, times)


def fire_times_between(spec, after: datetime, until: datetime) -> list[datetime]:
    """Due times t with after < t <= until within [start_date, end_date], oldest first.
    Unbounded: the caller keeps the range sensible for the schedule."""
    return [_naive(t) for t in _fire_times(spec, _utc(after), _utc(until))]


def next_fire_after(spec, after: datetime) -> datetime | None:
    """The first due time strictly after `after`; None if there is none (no schedule, past
    end_date, '@once' already due). '@once' without start_date is None too: it is due at
    the DAG's creation, which only `due_runs` knows."""
    t = next(_fire_times(spec, _utc(after), None), None)
    return None if t is None else _naive(t)


def _interval_start(spec, logical_date: datetime) -> datetime:
    """The previous cron time, even before start_date; '@once' has an empty interval."""
    previous = None
    if cron_for(spec.schedule) is not None:
        previous = _Cron(spec).at_or_before(logical_date - _TICK)
    return previous or logical_date


def interval_for(spec, logical_date: datetime) -> Due:
    """The Due for a fire time (used by backfill): its data interval ends at logical_date."""
    t = _utc(logical_date)
    return Due(_naive(t), _naive(_interval_start(spec, t)), _naive(t))


def due_runs(
    spec, last_logical_date: datetime | None, now: datetime, created_at: datetime, limit: int = 1000
) -> list[Due]:
    """The scheduled runs the clock must create at `now`, oldest first.

    Fire times count from start_date, or without one from the DAG's creation (a DAG never
    runs for times before it existed), and after the last scheduled run. Without catchup
    only the latest is due, so unpausing after a week creates one run, not hundreds; it is
    found with get_prev, never by iterating over the missed times.
    """
    start, now = _utc(spec.start_date or created_at), _utc(now)
    after = start - _TICK
    if last_logical_date is not None:
        after = max(after, _utc(last_logical_date))
    if spec.schedule is None or (spec.schedule == "@once" and last_logical_date is not None):
        times = []
    elif spec.schedule == "@once":
        times = list(_fire_times(spec, after, now, once_at=start))
    elif spec.catchup:
        times = list(islice(_fire_times(spec, after, now), limit))
    else:
        latest = _Cron(spec).at_or_before(min(now, spec.end_date or now))
        times = [latest] if latest is not None and latest > after else []
    starts = [_interval_start(spec, times[0]), *times[:-1]] if times else []
    return [Due(_naive(t), _naive(s), _naive(t)) for t, s in zip(times, starts, strict=True)]


def backfill_dates(spec, start: datetime, end: datetime, limit: int = 10000) -> list[datetime]:
    """Fire times with start <= t <= end, oldest first. Ignores catchup, start_date and
    end_date: the user asked for this range. ValueError without a cron schedule, when end is
    before start, or for more than `limit` dates (checked without counting them all)."""
    if cron_for(spec.schedule) is None:
        raise ValueError(f"cannot backfill: schedule {spec.schedule!r} has no cron times")
    start, end = _utc(start), _utc(end)
    if end < start:
        raise ValueError("cannot backfill: end is before start")
    times = takewhile(lambda t: t <= end, _Cron(spec).times_after(start - _TICK))
    dates = [_naive(t) for t in islice(times, limit + 1)]
    if len(dates) > limit:
        raise ValueError(f"cannot backfill: more than {limit} runs between {start} and {end}")
    return dates
