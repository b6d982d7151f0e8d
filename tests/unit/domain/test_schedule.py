"""app.domain.schedule: cron fire times in the DAG's timezone, due runs, data intervals, backfill.

Every clock is fixed: times are passed in, never read.
"""

import os
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from app.domain.dagspec import PRESETS, parse_dag_spec
from app.domain.schedule import (
    Due,
    backfill_dates,
    cron_for,
    due_runs,
    fire_times_between,
    interval_for,
    next_fire_after,
)

D = datetime  # naive UTC, as Brisa stores times
MINUTE = timedelta(minutes=1)
CREATED = D(2000, 1, 1)  # a DAG created long ago, for tests that are not about created_at


def spec(schedule="0 3 * * *", **fields):
    data = {"dag_id": "d", "schedule": schedule, "tasks": [{"task_id": "t", "function": "f"}]}
    return parse_dag_spec({**data, **fields}, {"f"})


def logical_dates(dues):
    return [due.logical_date for due in dues]


def hours(start, count):
    return [start + timedelta(hours=i) for i in range(count)]


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "@once"])
def test_cron_for_translates_presets(preset):
    assert cron_for(preset) == PRESETS[preset]


def test_cron_for_passes_cron_through_and_has_none_for_once_and_none():
    assert cron_for("*/5 * * * *") == "*/5 * * * *"
    assert cron_for("@once") is None
    assert cron_for(None) is None


def test_presets_fire_like_their_cron():
    daily = fire_times_between(spec("@daily"), D(2026, 5, 1, 12), D(2026, 5, 3, 12))
    assert daily == [D(2026, 5, 2), D(2026, 5, 3)]
    hourly = fire_times_between(spec("@hourly"), D(2026, 5, 1, 0, 30), D(2026, 5, 1, 3))
    assert hourly == [D(2026, 5, 1, 1), D(2026, 5, 1, 2), D(2026, 5, 1, 3)]


def test_every_15_minutes_excludes_after_and_includes_until():
    times = fire_times_between(spec("*/15 * * * *"), D(2026, 5, 1, 10), D(2026, 5, 1, 11))
    assert times == [D(2026, 5, 1, 10, m) for m in (15, 30, 45)] + [D(2026, 5, 1, 11)]


def test_daily_in_lisbon_keeps_wall_time_across_both_dst_changes():
    lisbon = spec(timezone="Europe/Lisbon")
    # 2026-03-29 01:00 UTC: WET (+0) -> WEST (+1).
    assert fire_times_between(lisbon, D(2026, 3, 27, 12), D(2026, 3, 30, 12)) == [
        D(2026, 3, 28, 3),
        D(2026, 3, 29, 2),
        D(2026, 3, 30, 2),
    ]
    # 2026-10-25 01:00 UTC: WEST -> WET, 01:00-02:00 happens twice; 03:00 once.
    assert fire_times_between(lisbon, D(2026, 10, 23, 12), D(2026, 10, 26, 12)) == [
        D(2026, 10, 24, 2),
        D(2026, 10, 25, 3),
        D(2026, 10, 26, 3),
    ]


def test_a_repeated_wall_time_fires_once_at_its_first_occurrence():
    lisbon = spec("30 1 * * *", timezone="Europe/Lisbon")
    # 01:30 on 2026-10-25 is 00:30 UTC (WEST) and again 01:30 UTC (WET).
    assert fire_times_between(lisbon, D(2026, 10, 24, 12), D(2026, 10, 26, 12)) == [
        D(2026, 10, 25, 0, 30),
        D(2026, 10, 26, 1, 30),
    ]
    assert next_fire_after(lisbon, D(2026, 10, 25, 0, 30)) == D(2026, 10, 26, 1, 30)
    due = due_runs(lisbon, None, D(2026, 10, 25, 2), CREATED)
    assert due == [Due(D(2026, 10, 25, 0, 30), D(2026, 10, 24, 0, 30), D(2026, 10, 25, 0, 30))]


def test_a_skipped_wall_time_fires_at_the_end_of_the_gap():
    new_york = spec("30 2 * * *", timezone="America/New_York")
    # 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 never happens, the run comes at 03:00.
    assert fire_times_between(new_york, D(2026, 3, 6, 12), D(2026, 3, 9, 12)) == [
        D(2026, 3, 7, 7, 30),
        D(2026, 3, 8, 7),
        D(2026, 3, 9, 6, 30),
    ]
    lisbon = spec("30 1 * * *", timezone="Europe/Lisbon")  # 01:00 WET jumps to 02:00 WEST
    assert D(2026, 3, 29, 1) in fire_times_between(lisbon, D(2026, 3, 28, 12), D(2026, 3, 29, 12))


def test_hourly_fires_every_real_hour_across_dst_in_new_york():
    new_york = spec("0 * * * *", timezone="America/New_York")
    # Spring: 23 wall-clock hours on 2026-03-08, each real hour once.
    spring = fire_times_between(new_york, D(2026, 3, 8, 4, 30), D(2026, 3, 8, 9, 30))
    assert spring == hours(D(2026, 3, 8, 5), 5)
    # Autumn: 01:00 EDT (05:00 UTC) and 01:00 EST (06:00 UTC) both run.
    autumn = fire_times_between(new_york, D(2026, 11, 1, 3, 30), D(2026, 11, 1, 8, 30))
    assert autumn == hours(D(2026, 11, 1, 4), 5)
    day = fire_times_between(new_york, D(2026, 11, 1, 4), D(2026, 11, 2, 5))
    assert day == hours(D(2026, 11, 1, 5), 25)  # the long day has 25 hours
    assert next_fire_after(new_york, D(2026, 11, 1, 5)) == D(2026, 11, 1, 6)
    assert logical_dates(due_runs(new_york, None, D(2026, 11, 1, 6, 10), CREATED)) == [
        D(2026, 11, 1, 6)
    ]


def _brute_force(cron, zone, lo, hi):
    """The intended fire times in (lo, hi], real minute by real minute. Every-hour schedules
    fire whenever the wall time matches; others once per matching wall time: at its first
    occurrence, or, for wall times a spring gap skips, at the first minute after the gap."""
    every_hour = croniter(cron).expanded[1] == ["*"]
    times, t = [], lo.replace(tzinfo=UTC)
    while t < hi.replace(tzinfo=UTC):
        t += timedelta(minutes=1)
        wall = t.astimezone(zone).replace(tzinfo=None)
        previous = (t - timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None)
        skipped = [previous + timedelta(minutes=i) for i in range(1, (wall - previous) // MINUTE)]
        first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) == t
        if (
            croniter.match(cron, wall)
            if every_hour
            else first and any(croniter.match(cron, w) for w in [wall, *skipped])
        ):
            times.append(t.replace(tzinfo=None))
    return times


@pytest.mark.parametrize(
    "zone, change",
    [
        ("America/New_York", D(2026, 3, 8, 7)),
        ("America/New_York", D(2026, 11, 1, 6)),
        ("Europe/Lisbon", D(2026, 10, 25, 1)),
        ("Australia/Lord_Howe", D(2026, 4, 4, 15)),  # a half-hour change
        ("Australia/Lord_Howe", D(2026, 10, 3, 15, 30)),
    ],
)
@pytest.mark.parametrize("cron", ["*/20 1-2 * * *", "30 * * * *", "0,30 2,3 * * *"])
def test_fire_times_match_a_minute_by_minute_brute_force_around_dst(zone, change, cron):
    dag = spec(cron, timezone=zone)
    lo, hi = change - timedelta(hours=30), change + timedelta(hours=30)
    expected = _brute_force(cron, ZoneInfo(zone), lo, hi)
    assert fire_times_between(dag, lo, hi) == expected
    assert backfill_dates(dag, lo + timedelta(minutes=1), hi) == expected
    for now in (change + timedelta(minutes=m) for m in range(-90, 91, 5)):
        latest = max(t for t in expected if t <= now)
        assert logical_dates(due_runs(dag, None, now, CREATED)) == [latest], now  # get_prev
        assert next_fire_after(dag, now) == min(t for t in expected if t > now), now


def test_start_date_in_the_future_means_nothing_is_due_yet():
    dag = spec("0 * * * *", start_date="2026-06-01T00:00:00Z", catchup=True)
    assert due_runs(dag, None, D(2026, 5, 31, 23, 59), CREATED) == []
    assert next_fire_after(dag, D(2026, 5, 1)) == D(2026, 6, 1)  # start_date itself counts
    assert logical_dates(due_runs(dag, None, D(2026, 6, 1), CREATED)) == [D(2026, 6, 1)]


def test_end_date_in_the_past_means_nothing_more():
    dag = spec("0 * * * *", end_date="2026-01-01T00:00:00Z", catchup=True)
    assert due_runs(dag, D(2026, 1, 1), D(2026, 5, 1), CREATED) == []
    assert next_fire_after(dag, D(2026, 1, 1)) is None
    assert fire_times_between(dag, D(2026, 1, 1), D(2026, 5, 1)) == []
    uncaught = spec("0 * * * *", end_date="2026-01-01T00:00:00Z")
    assert due_runs(uncaught, D(2026, 1, 1), D(2026, 5, 1), CREATED) == []


def test_end_date_caps_the_missed_runs():
    dag = spec("0 * * * *", end_date="2026-05-01T02:30:00Z", catchup=True)
    dues = due_runs(dag, D(2026, 5, 1), D(2026, 5, 2), CREATED)
    assert logical_dates(dues) == [D(2026, 5, 1, 1), D(2026, 5, 1, 2)]
    uncaught = spec("0 * * * *", end_date="2026-05-01T02:30:00Z")
    assert logical_dates(due_runs(uncaught, D(2026, 5, 1), D(2026, 5, 2), CREATED)) == [
        D(2026, 5, 1, 2)
    ]


def test_catchup_creates_every_missed_run_oldest_first_up_to_limit():
    dag = spec("0 * * * *", start_date="2026-05-01T00:00:00Z", catchup=True)
    assert logical_dates(due_runs(dag, None, D(2026, 5, 1, 3, 10), CREATED)) == hours(
        D(2026, 5, 1), 4
    )
    capped = due_runs(dag, None, D(2026, 5, 2), CREATED, limit=3)
    assert logical_dates(capped) == hours(D(2026, 5, 1), 3)
    # The next tick resumes from the last one created.
    resumed = due_runs(dag, capped[-1].logical_date, D(2026, 5, 2), CREATED, limit=3)
    assert logical_dates(resumed) == hours(D(2026, 5, 1, 3), 3)


def test_catchup_creates_at_most_1000_runs_a_call():
    dag = spec("* * * * *", start_date="2026-05-01T00:00:00Z", catchup=True)
    dues = due_runs(dag, None, D(2026, 5, 1) + 1500 * MINUTE, CREATED)
    assert logical_dates(dues) == [D(2026, 5, 1) + i * MINUTE for i in range(1000)]


def test_without_catchup_only_the_latest_run_is_due():
    dag = spec("0 * * * *", start_date="2026-05-01T00:00:00Z")
    assert logical_dates(due_runs(dag, None, D(2026, 5, 8, 12, 30), CREATED)) == [D(2026, 5, 8, 12)]
    assert logical_dates(due_runs(dag, D(2026, 5, 1, 5), D(2026, 5, 8, 12), CREATED)) == [
        D(2026, 5, 8, 12)
    ]


@pytest.mark.parametrize("catchup", [True, False])
def test_last_logical_date_excludes_itself_and_earlier(catchup):
    dag = spec("0 * * * *", start_date="2026-05-01T00:00:00Z", catchup=catchup)
    assert due_runs(dag, D(2026, 5, 1, 3), D(2026, 5, 1, 3, 59), CREATED) == []
    assert due_runs(dag, D(2026, 5, 1, 4), D(2026, 5, 1, 3, 59), CREATED) == []  # clock skew
    dues = due_runs(dag, D(2026, 5, 1, 3), D(2026, 5, 1, 4), CREATED)
    assert logical_dates(dues) == [D(2026, 5, 1, 4)]


def test_created_at_is_the_start_without_start_date():
    dag = spec("0 * * * *", catchup=True)
    created = D(2026, 5, 1, 2, 30)
    dues = due_runs(dag, None, D(2026, 5, 1, 4, 30), created)
    assert logical_dates(dues) == [D(2026, 5, 1, 3), D(2026, 5, 1, 4)]
    # A fire time equal to the creation time counts.
    on_the_hour = due_runs(dag, None, D(2026, 5, 1, 3, 30), D(2026, 5, 1, 3))
    assert logical_dates(on_the_hour) == [D(2026, 5, 1, 3)]
    uncaught = spec("@daily")
    assert due_runs(uncaught, None, D(2026, 5, 1, 23), D(2026, 5, 1, 0, 1)) == []


def test_once_runs_once_at_the_start():
    dag = spec("@once", start_date="2026-05-01T09:00:00Z")
    assert due_runs(dag, None, D(2026, 5, 1, 8), CREATED) == []
    due = Due(D(2026, 5, 1, 9), D(2026, 5, 1, 9), D(2026, 5, 1, 9))
    assert due_runs(dag, None, D(2026, 5, 3), CREATED) == [due]
    assert due_runs(dag, D(2026, 5, 1, 9), D(2026, 5, 3), CREATED) == []
    assert next_fire_after(dag, D(2026, 5, 1)) == D(2026, 5, 1, 9)
    assert next_fire_after(dag, D(2026, 5, 1, 9)) is None
    created = D(2026, 5, 2, 10, 15)
    assert logical_dates(due_runs(spec("@once"), None, D(2026, 5, 3), created)) == [created]
    assert interval_for(dag, D(2026, 5, 1, 9)) == due


def test_once_does_not_run_again_when_its_start_date_moves_later():
    moved = spec("@once", start_date="2026-05-02T09:00:00Z")  # it ran on 1 May at 09:00
    assert due_runs(moved, D(2026, 5, 1, 9), D(2026, 5, 3), CREATED) == []


def test_no_schedule_is_never_due():
    dag = spec(None)
    assert due_runs(dag, None, D(2026, 5, 3), CREATED) == []
    assert next_fire_after(dag, D(2026, 5, 1)) is None
    assert fire_times_between(dag, D(2026, 5, 1), D(2026, 5, 3)) == []


def test_a_cron_that_never_matches_is_never_due():
    dag = spec("0 0 30 2 *")  # February 30th
    assert next_fire_after(dag, D(2026, 1, 1)) is None
    assert due_runs(dag, None, D(2026, 5, 3), CREATED) == []


def test_data_interval_starts_at_the_previous_fire_time():
    dag = spec("0 10 * * 1-5", start_date="2026-05-04T00:00:00Z", catchup=True)  # weekdays
    dues = due_runs(dag, None, D(2026, 5, 11, 12), CREATED)
    assert dues[0] == Due(D(2026, 5, 4, 10), D(2026, 5, 1, 10), D(2026, 5, 4, 10))  # before start
    assert dues[-1] == Due(D(2026, 5, 11, 10), D(2026, 5, 8, 10), D(2026, 5, 11, 10))  # weekend
    assert all(d.data_interval_start == p.logical_date for p, d in pairwise(dues))
    assert all(d.data_interval_end == d.logical_date for d in dues)
    assert interval_for(dag, D(2026, 5, 11, 10)) == dues[-1]
    lisbon = spec(timezone="Europe/Lisbon")
    assert interval_for(lisbon, D(2026, 3, 29, 2)).data_interval_start == D(2026, 3, 28, 3)


def test_naive_and_aware_inputs_mean_the_same_instant():
    dag = spec("0 * * * *")
    aware = datetime(2026, 5, 1, 12, 30, tzinfo=ZoneInfo("Europe/Lisbon"))  # 11:30 UTC
    assert next_fire_after(dag, aware) == next_fire_after(dag, D(2026, 5, 1, 11, 30))
    assert next_fire_after(dag, aware).tzinfo is None


@pytest.fixture
def local_time_new_york():
    """The process's local time zone is not UTC (naive times must still mean UTC)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_naive_times_are_utc_whatever_the_local_time_zone(local_time_new_york):
    dag = spec("0 * * * *", start_date="2026-05-01T00:00:00Z", catchup=True)
    assert next_fire_after(dag, D(2026, 5, 1, 11, 30)) == D(2026, 5, 1, 12)
    dues = due_runs(dag, D(2026, 5, 1, 10), D(2026, 5, 1, 12, 30), CREATED)
    assert dues == [
        Due(D(2026, 5, 1, 11), D(2026, 5, 1, 10), D(2026, 5, 1, 11)),
        Due(D(2026, 5, 1, 12), D(2026, 5, 1, 11), D(2026, 5, 1, 12)),
    ]
    assert backfill_dates(dag, D(2026, 5, 1, 1), D(2026, 5, 1, 2)) == hours(D(2026, 5, 1, 1), 2)


def test_backfill_dates_are_inclusive_and_ignore_start_end_and_catchup():
    dag = spec("0 * * * *", start_date="2026-05-01T02:00:00Z", end_date="2026-05-01T03:00:00Z")
    assert backfill_dates(dag, D(2026, 5, 1), D(2026, 5, 1, 5)) == hours(D(2026, 5, 1), 6)
    assert backfill_dates(dag, D(2026, 5, 1, 0, 1), D(2026, 5, 1, 0, 59)) == []
    assert backfill_dates(dag, D(2026, 5, 1, 1), D(2026, 5, 1, 1)) == [D(2026, 5, 1, 1)]


@pytest.mark.parametrize("schedule_", [None, "@once"])
def test_backfill_needs_a_cron_schedule(schedule_):
    with pytest.raises(ValueError, match="cron"):
        backfill_dates(spec(schedule_), D(2026, 5, 1), D(2026, 5, 2))


def test_backfill_refuses_too_many_dates_and_a_reversed_range():
    dag = spec("* * * * *")
    assert len(backfill_dates(dag, D(2026, 5, 1), D(2026, 5, 1, 0, 9), limit=10)) == 10
    with pytest.raises(ValueError, match="more than 10"):
        backfill_dates(dag, D(2026, 5, 1), D(2026, 5, 1, 0, 10), limit=10)
    with pytest.raises(ValueError) as reversed_range:
        backfill_dates(dag, D(2026, 5, 2), D(2026, 5, 1))
    assert str(reversed_range.value) == "cannot backfill: end is before start"


def test_backfill_allows_10000_dates_by_default():
    with pytest.raises(ValueError, match="more than 10000 runs between"):
        backfill_dates(spec("* * * * *"), D(2026, 5, 1), D(2026, 5, 1) + 10_000 * MINUTE)


def test_backfill_refuses_a_huge_range_without_counting_it(monkeypatch):
    steps = count_croniter_steps(monkeypatch)
    with pytest.raises(ValueError, match="more than 10 runs"):
        backfill_dates(spec("* * * * *"), D(2026, 5, 1), D(9000, 1, 1), limit=10)
    assert len(steps) <= 12  # limit + 1 dates, and the first found


def count_croniter_steps(monkeypatch) -> list:
    """A list that grows by one at each step croniter takes, forwards or backwards."""
    steps: list = []
    for name in ("get_next", "get_prev"):
        original = getattr(croniter, name)

        def counted(self, *args, _original=original, **kwargs):
            steps.append(1)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(croniter, name, counted)
    return steps


def test_a_year_of_missed_minutes_without_catchup_jumps_to_the_latest(monkeypatch):
    steps = count_croniter_steps(monkeypatch)
    dag = spec("* * * * *", timezone="Europe/Lisbon")
    dues = due_runs(dag, D(2025, 5, 1), D(2026, 5, 1, 12, 0, 30), CREATED)
    assert dues == [Due(D(2026, 5, 1, 12), D(2026, 5, 1, 11, 59), D(2026, 5, 1, 12))]
    assert len(steps) < 10  # not one per missed minute
    steps.clear()
    caught_up = spec("* * * * *", catchup=True)
    assert len(due_runs(caught_up, D(2025, 5, 1), D(2026, 5, 1), CREATED, limit=50)) == 50
    assert len(steps) < 60  # the limit bounds the work
