"""A tiny run of every benchmark on each backend, so `make bench` cannot rot. Its figures are
checked for sense (counts match, every accepted webhook has exactly one run, the scale-out
ran on one worker process and then on two, the database counted statements), never for
speed: speed is measured by `make bench`, not asserted in tests."""

import pytest

from tests.bench import history
from tests.bench.suite import run_backend
from tests.bench.targets import HISTORY_READS, targets_for

FIB_10 = 55


def check_chain(figures: dict, sizes: dict) -> None:
    chain, raw = figures["chain40"], figures["raw_huey"]["chain"]
    assert chain["tasks"] == raw["tasks"] == sizes["chain"]
    assert chain["result"] == raw["total"] == FIB_10 * sizes["chain"]  # each passed its sum on
    # a hand-off is from a function's return to the next one's first line: within the run
    assert 0 < chain["handoff_p50_ms"] <= chain["handoff_p95_ms"] < chain["wall_s"] * 1000
    assert 0 < chain["in_function_p50_ms"] < chain["wall_s"] * 1000
    assert 0 < raw["handoff_p50_ms"] <= raw["handoff_p95_ms"] < raw["wall_s"] * 1000
    assert chain["vs_raw_huey"] > 0


def check_fanout(figures: dict, sizes: dict) -> None:
    fanout, raw = figures["fanout1000"], figures["raw_huey"]["noop"]
    assert fanout["tasks"] == sizes["fanout"] + 2 and fanout["runs"] >= 1
    assert 0 < fanout["tasks_per_s"] <= fanout["tasks_per_s_best"]
    assert raw["tasks"] == sizes["raw_tasks"] and raw["tasks_per_s"] > 0
    assert fanout["share_of_raw_huey"] > 0
    cpu = fanout["cpu_per_try"]
    assert cpu["worker_ms"] > 0 and cpu["total_ms"] == pytest.approx(
        cpu["worker_ms"] + cpu["children_ms"], abs=0.011
    )


def check_scaleout(figures: dict, sizes: dict) -> None:
    """Postgres only: a fan-out on one worker process and on two, with the database's
    counters (in a quick run the commits are rough: it does not wait for them)."""
    scale = figures["scaleout"]
    for key, processes in (("one", 1), ("two", 2)):
        counted = scale[key]
        assert counted["worker_processes"] == processes
        assert counted["runs"] == sizes["scaleout_runs"]
        assert counted["tasks"] == sizes["fanout"] + 2
        assert counted["statements_per_task"] >= 5  # a claim, an outcome, a successor...
        assert counted["commits_per_task"] >= 2
        assert counted["wal_bytes_per_task"] > 0 and counted["cpu_per_task"]["total_ms"] > 0
    assert scale["ratio"] > 0


def check_history(figures: dict, sizes: dict) -> None:
    reads = figures["history50k"]
    assert reads["runs_kept"] == history.QUICK_RUNS
    for key, _, _ in HISTORY_READS:
        assert reads[key]["p50_ms"] > 0 and reads[key]["statements"] >= 1


def check_invoke(figures: dict, sizes: dict) -> None:
    sequential, concurrent = figures["invoke"]["sequential"], figures["invoke"]["concurrent"]
    assert sequential["calls"] == sizes["invoke_sequential"]
    assert concurrent["calls"] == sizes["invoke_concurrent"]
    assert concurrent["clients"] == sizes["invoke_clients"]
    for figure in (sequential, concurrent):
        assert 0 < figure["p50_ms"] <= figure["p99_ms"] and figure["per_s"] > 0


def check_webhooks(figures: dict, sizes: dict) -> None:
    hooks = figures["webhooks"]
    assert hooks["deliveries"] == hooks["accepted"] == sizes["webhooks"]
    assert hooks["runs"] == hooks["succeeded"] == hooks["accepted"]
    assert hooks["lost"] == hooks["duplicated"] == hooks["unanswered_runs"] == 0
    assert hooks["accepted_per_s"] > 0


def check_tick(figures: dict, sizes: dict) -> None:
    tick = figures["tick"]
    assert (tick["dags"], tick["due"]) == (sizes["tick_dags"], sizes["tick_due"])
    assert tick["runs_created"] == sizes["tick_due"] and tick["duration_s"] > 0


def check_memory(figures: dict, sizes: dict) -> None:
    memory = figures["worker_memory"]
    assert memory["tasks_since"] >= sizes["tasks_for_growth"]
    for moment in ("idle", "after_first_fanout", "after_tasks"):
        tree = memory[moment]
        assert "fork server" in {child["what"] for child in tree["children"]}
        assert 0 < tree["worker_mb"] < tree["total_mb"]
        assert 0 < tree["total_pss_mb"] <= tree["total_mb"]


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["embedded", "postgres"])
def test_every_benchmark_runs_and_reports_sane_figures(backend):
    result = run_backend(backend, quick=True)
    figures, sizes = result["figures"], result["sizes"]
    checks = [check_chain, check_fanout, check_invoke, check_webhooks, check_tick, check_history]
    for check in checks + ([check_scaleout] if backend == "postgres" else []):
        check(figures, sizes)
    check_memory(figures, sizes)
    assert ("scaleout" in figures) is (backend == "postgres")
    assert len(result["targets"]) == len(targets_for(backend))
    assert all(row["met"] is None for row in result["targets"]), "a quick run judges nothing"
