"""The benchmark's verdicts (tests/bench/targets.py): each figure against its target, strict
and inclusive bounds, the embedded default's slack on speed targets only (not on ratios to
bare huey), the figures measured on Postgres only, a quick run judging nothing, and the table
the verdicts print as. Then the bench's bookkeeping: the history of key figures kept in
results.json (tests/bench/versions.py), its chart (tests/bench/chart.py), and the CPU time of
a process tree (tests/bench/measure.py)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tests.bench import chart, measure, versions
from tests.bench.measure import CpuMeter, process_tree_cpu_s
from tests.bench.targets import (
    EMBEDDED_SLACK,
    TARGETS,
    figure_at,
    judge,
    number,
    table,
    targets_for,
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
    (row,) = [row for row in rows if row["path"] == path]
    return row


def met(path: str, value: float, backend: str = "postgres") -> bool | None:
    return row_for(judge(figures_with({path: value}), backend, quick=False), path)["met"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("chain40.handoff_p50_ms", 2.49, True),  # < 2.5 ms
        ("chain40.handoff_p50_ms", 2.5, False),  # strict: the limit itself misses
        ("chain40.handoff_p95_ms", 4.9, True),  # < 5 ms
        ("chain40.handoff_p95_ms", 5, False),
        ("chain40.vs_raw_huey", 4, True),  # ≤ 4×: the limit itself meets
        ("chain40.vs_raw_huey", 4.01, False),
        ("fanout1000.tasks_per_s", 500, True),  # ≥ 500/s
        ("fanout1000.tasks_per_s", 499.9, False),
        ("fanout1000.share_of_raw_huey", 30, True),  # ≥ 30 %
        ("fanout1000.share_of_raw_huey", 29.9, False),
        ("invoke.sequential.p99_ms", 24.9, True),  # < 25 ms
        ("invoke.sequential.p99_ms", 25, False),
        ("invoke.concurrent.per_s", 300, True),  # ≥ 300 req/s
        ("invoke.concurrent.per_s", 299, False),
        ("webhooks.accepted_per_s", 500, True),  # ≥ 500/s
        ("webhooks.lost", 0, True),  # = 0
        ("webhooks.lost", 1, False),
        ("webhooks.duplicated", 1, False),  # each delivery exactly one run
        ("tick.duration_s", 0.29, True),  # < 0.3 s
        ("tick.duration_s", 0.3, False),
        ("scaleout.ratio", 1.6, True),  # ≥ 1.6×
        ("scaleout.ratio", 1.59, False),
        ("history50k.ui_dag_big200.p50_ms", 49.9, True),  # < 50 ms
        ("history50k.ui_dag_big200.p50_ms", 50, False),
        ("history50k.ui_grid_poll_big200.p50_ms", 99, True),  # the grid poll: < 100 ms
        ("history50k.ui_grid_poll_big200.p50_ms", 100, False),
    ],
)
def test_each_bound_judges_its_figure(path, value, expected):
    assert met(path, value) is expected


@pytest.mark.parametrize(
    ("path", "value", "on_postgres", "on_embedded"),
    [
        ("chain40.handoff_p50_ms", 7, False, True),  # lower is better: 3× the time
        ("chain40.handoff_p50_ms", 2.5 * EMBEDDED_SLACK, False, False),
        ("fanout1000.tasks_per_s", 200, False, True),  # higher is better: a third of the rate
        ("fanout1000.tasks_per_s", 166, False, False),
        ("history50k.metrics.p50_ms", 120, False, True),  # the history's reads are speeds
        ("chain40.vs_raw_huey", 5, False, False),  # ratios to bare huey: no slack
        ("fanout1000.share_of_raw_huey", 20, False, False),
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


def test_the_scale_out_and_the_statements_are_judged_on_postgres_only():
    postgres = judge(figures_with({}), "postgres", quick=False)
    embedded = judge(figures_with({}), "embedded", quick=False)
    assert {row["path"] for row in postgres} - {row["path"] for row in embedded} == {
        target.path for target in TARGETS if target.benchmark == "scaleout"
    }
    assert "scaleout.two.statements_per_task" in {row["path"] for row in postgres}
    figures = figures_with({})
    del figures["scaleout"]  # not measured on the embedded default
    assert len(judge(figures, "embedded", quick=False)) == len(targets_for("embedded"))


def test_a_row_shows_the_figure_and_the_target_for_its_backend():
    figures = figures_with({"chain40.handoff_p50_ms": 2.0})
    postgres = row_for(judge(figures, "postgres", quick=False), "chain40.handoff_p50_ms")
    embedded = row_for(judge(figures, "embedded", quick=False), "chain40.handoff_p50_ms")
    assert postgres == {
        "benchmark": "chain40",
        "figure": "hand-off p50",
        "path": "chain40.handoff_p50_ms",
        "value": 2.0,
        "unit": "ms",
        "target": "< 2.5 ms",
        "met": True,
    }
    assert embedded["target"] == "< 7.5 ms"


def test_a_figure_without_a_target_is_reported_not_judged():
    rows = judge(figures_with({"chain40.wall_s": 0.5}), "postgres", quick=False)
    row = row_for(rows, "chain40.wall_s")
    assert (row["value"], row["target"], row["met"]) == (0.5, None, None)


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
    del figures["chain40"]["handoff_p50_ms"]
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
    assert lines[1].split() == "chain40 trigger → success 0.5 s".split()  # no target
    assert lines[2].split() == "chain40 hand-off p50 3 ms < 2.5 ms MISSED".split()
    assert lines[3].split() == "chain40 hand-off p95 1 ms < 5 ms met".split()


def test_numbers_are_shown_short():
    assert [number(0.4), number(4), number(12.345), number(1234.5)] == [
        "0.4",
        "4",
        "12.3",
        "1,234",
    ]


def test_figure_at_follows_a_dotted_path():
    assert figure_at({"a": {"b": {"c": 3}}}, "a.b.c") == 3


# The history of key figures, and its chart ----------------------------------------------


def results_with(handoff_ms: float, method_backends=("postgres", "embedded")) -> dict:
    figures = figures_with({"chain40.handoff_p50_ms": handoff_ms, "scaleout.ratio": 1.7})
    return {
        "machine": {"load_average_at_start": [0.5, 0.4, 0.3]},
        "backends": {name: {"figures": figures} for name in method_backends},
    }


def test_an_entry_keeps_the_key_figures_of_each_backend():
    entry = versions.entry(results_with(2.2), "2026-12-01T10:00:00+00:00", "abc123", dirty=True)
    assert (entry["commit"], entry["dirty"], entry["method"]) == ("abc123", True, versions.METHOD)
    assert set(entry["backends"]) == {"postgres", "embedded"}
    postgres = entry["backends"]["postgres"]
    assert set(postgres) == set(versions.KEY_FIGURES)
    assert (postgres["handoff_p50_ms"], postgres["scaleout_ratio"]) == (2.2, 1.7)


def test_an_entry_of_the_first_format_keeps_what_it_can():
    first = {"machine": {}, "backends": {"embedded": {"invoke": {"calls": 20, "p50_ms": 39.8}}}}
    entry = versions.entry(first, "2026-11-25T16:52:47+00:00", "4b83c0a", False, method=1)
    assert entry["backends"] == {"embedded": {"invoke_p50_ms": 39.8}}


def test_the_history_grows_by_one_entry_a_run(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    subprocess.run(
        ["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"],
        check=True,
        env=env,
    )
    older = versions.entry(results_with(5.0), "2026-11-25T20:00:00+00:00", "old", False, 1)
    previous = {"history": [older]}
    updated = versions.with_history(results_with(2.0), previous, tmp_path)
    assert [entry["commit"] for entry in updated["history"]][0] == "old"
    assert len(updated["history"]) == 2
    newest = updated["history"][-1]
    assert newest["method"] == versions.METHOD and not newest["dirty"]
    assert newest["backends"]["postgres"]["handoff_p50_ms"] == 2.0


def history_of(*handoffs_and_methods) -> list[dict]:
    return [
        versions.entry(results_with(handoff), f"2026-12-0{n + 1}T10:00:00+00:00", f"c{n}", False, m)
        for n, (handoff, m) in enumerate(handoffs_and_methods)
    ]


def test_the_chart_draws_a_point_per_entry_and_breaks_where_the_method_changed():
    history = history_of((5.0, 1), (4.0, 1), (2.0, 2))
    document = ET.fromstring(chart.svg(history))
    ns = "{http://www.w3.org/2000/svg}"
    circles = document.iter(f"{ns}circle")
    tips = [circle.find(f"{ns}title").text for circle in circles]
    handoffs = [tip for tip in tips if tip.startswith("Postgres") and ": 2, " in tip]
    assert handoffs and "commit c2" in handoffs[0]
    panels = len(versions.KEY_FIGURES)
    # a point per entry, backend and figure; per backend and figure a line before the
    # method changed and one after it
    assert len(tips) == 3 * 2 * panels
    assert len(list(document.iter(f"{ns}polyline"))) == 2 * 2 * panels
    rules = [line for line in document.iter(f"{ns}line") if line.get("class") == "method"]
    assert len(rules) == panels


def test_the_chart_shows_the_postgres_target_of_a_figure():
    document = ET.fromstring(chart.svg(history_of((2.0, 2))))
    ns = "{http://www.w3.org/2000/svg}"
    targets = {
        line.find(f"{ns}title").text
        for line in document.iter(f"{ns}line")
        if line.get("class") == "target" and line.find(f"{ns}title") is not None
    }
    assert {"target: 2.5", "target: 500", "target: 1.6"} <= targets


# CPU time of a process tree -------------------------------------------------------------

BURN_AND_SAY = "import time\nwhile time.process_time() < 0.3: pass\nprint('burnt', flush=True)\n"


@contextlib.contextmanager
def parent_of_a_burner(child_exits: bool):
    """A process whose child burns 0.3 s of CPU, says so on the shared stdout, and then
    exits (reaped by its parent, which then sleeps) or sleeps; both killed on exit."""
    child = BURN_AND_SAY + ("" if child_exits else "time.sleep(60)\n")
    code = f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {child!r}])\n"
    code += "time.sleep(60)\n"
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield parent
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_a_reaped_childs_cpu_counts_for_its_parents_tree():
    with parent_of_a_burner(child_exits=True) as parent:
        meter = CpuMeter([parent.pid])
        with meter:
            assert parent.stdout.readline() == "burnt\n"
            deadline = time.monotonic() + 30
            while measure.descendants(parent.pid):  # until the parent reaped it
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert meter.children_s >= 0.29  # the child's 0.3 s, in whole ticks


def test_a_living_descendants_cpu_counts_too():
    with parent_of_a_burner(child_exits=False) as parent:
        assert parent.stdout.readline() == "burnt\n"
        assert len(measure.descendants(parent.pid)) == 1  # alive, sleeping
        assert process_tree_cpu_s(parent.pid)["children_s"] >= 0.29
