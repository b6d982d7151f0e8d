"""#18: the try-duration histogram of /metrics is counted as each try ends (TryDuration), so
a scrape reads counters, not the history; an upgraded database starts from the tries it
kept. On every backend."""

import re
from datetime import datetime, timedelta

from app.engine import metrics
from app.store import migrations
from app.store.db import db
from app.store.models import (
    DagRun,
    Function,
    FunctionVersion,
    SchemaVersion,
    TaskInstance,
    TaskTry,
    TryDuration,
)

ENDED = datetime(2026, 1, 1, 12, 0)


def histogram() -> dict[str, float]:
    """brisa_task_duration_seconds's samples as /metrics shows them, by suffix."""
    text = metrics.render()
    found = re.findall(r"^brisa_task_duration_seconds(\S*) (\S+)$", text, flags=re.MULTILINE)
    return {suffix: float(value) for suffix, value in found}


def observe(ti_id: int, seconds: float | None) -> None:
    started = None if seconds is None else ENDED - timedelta(seconds=seconds)
    with db.atomic():
        metrics.observe_try(ti_id, started, ENDED)


def test_each_try_is_counted_in_its_bucket_and_the_buckets_add_up(backend):
    with db.connection_context():
        for ti_id, seconds in enumerate([0.01, 0.05, 0.3, 0.3, 3, 4000]):
            observe(ti_id, seconds)
        observe(99, None)  # handed back before it started: no duration
        shown = histogram()
    assert shown['_bucket{le="0.05"}'] == 2  # 0.05 itself is in le="0.05"
    assert shown['_bucket{le="0.1"}'] == 2
    assert shown['_bucket{le="0.5"}'] == 4
    assert shown['_bucket{le="5"}'] == 5
    assert shown['_bucket{le="1800"}'] == 5
    assert shown['_bucket{le="+Inf"}'] == shown["_count"] == 6
    assert abs(shown["_sum"] - 4003.66) < 1e-6


def test_tries_of_many_task_instances_add_to_one_bucket(backend):
    with db.connection_context():
        for ti_id in range(3 * metrics.HISTOGRAM_SHARDS):
            observe(ti_id, 0.2)
        rows = TryDuration.select().where(TryDuration.le == "0.25").count()
        shown = histogram()
    assert rows == metrics.HISTOGRAM_SHARDS  # spread over the shards, one row each
    assert shown['_bucket{le="0.25"}'] == shown["_count"] == 3 * metrics.HISTOGRAM_SHARDS
    assert shown['_bucket{le="0.1"}'] == 0


def test_an_empty_histogram_shows_zeros(backend):
    with db.connection_context():
        shown = histogram()
    assert set(shown.values()) == {0}
    assert len(shown) == len(metrics.TRY_DURATION_BOUNDS) + 3  # +Inf, _sum, _count


def test_an_upgraded_database_counts_the_tries_it_kept(backend):
    with db.connection_context():
        ti = _task_instance()
        for number, seconds in enumerate([0.02, 7, 7], start=1):
            started = ENDED - timedelta(seconds=seconds)
            TaskTry.create(
                task_instance=ti,
                try_number=number,
                state="failed",
                started_at=started,
                finished_at=ENDED,
            )
        TaskTry.create(task_instance=ti, try_number=4, state="handed_back", finished_at=ENDED)
        db.drop_tables([TryDuration])
        db.execute_sql("DROP INDEX dag_run_dag_id_state_id")
        SchemaVersion.update(version=10).execute()

        assert migrations.migrate() == (10, migrations.LATEST)
        shown = histogram()
        indexes = {index.name for index in db.get_indexes("dag_run")}
    assert shown['_bucket{le="0.05"}'] == 1
    assert shown['_bucket{le="10"}'] == shown["_count"] == 3
    assert abs(shown["_sum"] - 14.02) < 1e-3
    assert "dag_run_dag_id_state_id" in indexes


def _task_instance() -> TaskInstance:
    function = Function.create(name="f")
    version = FunctionVersion.create(
        function=function, version=1, source="", sha256="", handler="handler",
        runtime="python", timeout=1, memory_mb=64, env={},
    )  # fmt: skip
    run = DagRun.create(run_type="invoke", logical_date=ENDED, state="failed", function=function)
    return TaskInstance.create(
        run=run, task_id="f", function_version=version, state="failed", timeout=1
    )
