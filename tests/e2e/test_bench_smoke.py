"""A tiny run of every benchmark, so `make bench` cannot rot (figures are not checked: speed
is measured by `make bench`, never asserted in tests)."""

import pytest

from tests.bench.__main__ import run_backend


@pytest.mark.e2e
def test_every_benchmark_runs_and_reports_its_figures():
    figures = run_backend("embedded", quick=True)
    assert set(figures) == {"example_pipeline", "chain10", "invoke"}
    assert figures["chain10"]["tasks"] == 10 and figures["chain10"]["wall_s"] > 0
    assert figures["invoke"]["calls"] == 20 and figures["invoke"]["p50_ms"] > 0
    assert figures["example_pipeline"]["runs"] == 5
