"""The benchmark's verdicts (tests/bench/targets.py): each figure against its target, strict
and inclusive bounds, the embedded default's slack on speed targets only, a quick run judging
nothing, and the table the verdicts print as."""

import pytest

from tests.bench.targets import (
    EMBEDDED_SLACK,
    TARGETS,
    figure_at,
    judge,
    number,
    table,
    verdict,
)


def figures_with(values: dict[str, float], default: float = 1.0) -> dict:
    """Figures holding every target's path: ``values`` by path, ``default`` elsewhere."""
    figures: dict = {}
    for target in TARGETS:
        *parents, leaf = target.path.split(".")
        node = figures
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = values.get(target.path, default)
    return figures


def row_for(rows: list[dict], path: str) -> dict:
    (index,) = [i for i, target in enumerate(TARGETS) if target.path == path]
    return rows[index]


def met(path: str, value: float, backend: str = "postgres") -> bool | None:
    return row_for(judge(figures_with({path: value}), backend, quick=False), path)["met"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("chain40.wall_s", 0.39, True),  # < 0.4 s
        ("chain40.wall_s", 0.4, False),  # strict: the limit itself misses
        ("chain40.vs_raw_huey", 4, True),  # ≤ 4×: the limit itself meets
        ("chain40.vs_raw_huey", 4.01, False),
        ("fanout1000.tasks_per_s", 501, True),  # > 500/s
        ("fanout1000.tasks_per_s", 500, False),
        ("fanout1000.share_of_raw_huey", 30, True),  # ≥ 30 %
        ("fanout1000.share_of_raw_huey", 29.9, False),
        ("webhooks.lost", 0, True),  # = 0
        ("webhooks.lost", 1, False),
    ],
)
def test_each_bound_judges_its_figure(path, value, expected):
    assert met(path, value) is expected


@pytest.mark.parametrize(
    ("path", "value", "on_postgres", "on_embedded"),
    [
        ("chain40.wall_s", 1.1, False, True),  # lower is better: 3× the time
        ("chain40.wall_s", 0.4 * EMBEDDED_SLACK, False, False),
        ("fanout1000.tasks_per_s", 200, False, True),  # higher is better: a third of the rate
        ("fanout1000.tasks_per_s", 500 / EMBEDDED_SLACK, False, False),
        ("worker_memory.idle.total_mb", 150, False, False),  # memory: no slack
        ("webhooks.lost", 1, False, False),  # losing nothing: no slack
    ],
)
def test_the_embedded_default_gets_slack_on_speed_targets_only(
    path, value, on_postgres, on_embedded
):
    assert (met(path, value, "postgres"), met(path, value, "embedded")) == (
        on_postgres,
        on_embedded,
    )


def test_a_row_shows_the_figure_and_the_target_for_its_backend():
    figures = figures_with({"chain40.wall_s": 0.25})
    postgres = row_for(judge(figures, "postgres", quick=False), "chain40.wall_s")
    embedded = row_for(judge(figures, "embedded", quick=False), "chain40.wall_s")
    assert postgres == {
        "benchmark": "chain40",
        "figure": "trigger → success",
        "value": 0.25,
        "unit": "s",
        "target": "< 0.4 s",
        "met": True,
    }
    assert embedded["target"] == "< 1.2 s"


def test_a_figure_without_a_target_is_reported_not_judged():
    rows = judge(figures_with({"chain40.handoff_p95_ms": 7.5}), "postgres", quick=False)
    row = row_for(rows, "chain40.handoff_p95_ms")
    assert (row["value"], row["target"], row["met"]) == (7.5, None, None)


def test_a_quick_run_shows_every_target_and_judges_none():
    rows = judge(figures_with({}, default=10**9), "postgres", quick=True)
    assert [row["figure"] for row in rows] == [target.figure for target in TARGETS]
    assert all(row["met"] is None for row in rows)
    judged = [target for target in TARGETS if target.limit is not None]
    assert [row["target"] for row in rows if row["target"]] == [
        target.shown(target.limit) for target in judged
    ]


def test_a_missing_figure_is_an_error_not_a_pass():
    figures = figures_with({})
    del figures["chain40"]["wall_s"]
    with pytest.raises(KeyError):
        judge(figures, "postgres", quick=False)


def test_verdicts_and_the_table():
    assert [verdict(True, True), verdict(False, True), verdict(None, True)] == [
        "met",
        "MISSED",
        "(quick)",
    ]
    assert verdict(None, False) == ""
    figures = figures_with({"chain40.wall_s": 0.5, "chain40.handoff_p50_ms": 3})
    lines = table(judge(figures, "postgres", quick=False)).splitlines()
    assert lines[0].split() == ["benchmark", "figure", "value", "target"]
    assert len(lines) == len(TARGETS) + 1
    assert lines[1].split() == "chain40 trigger → success 0.5 s < 0.4 s MISSED".split()
    assert lines[2].split() == "chain40 hand-off p50 3 ms < 5 ms met".split()
    assert lines[3].split() == "chain40 hand-off p95 1 ms".split()  # no target, no verdict


def test_numbers_are_shown_short():
    assert [number(0.4), number(4), number(12.345), number(1234.5)] == [
        "0.4",
        "4",
        "12.3",
        "1,234",
    ]


def test_figure_at_follows_a_dotted_path():
    assert figure_at({"a": {"b": {"c": 3}}}, "a.b.c") == 3
