"""``make bench``: start the Procfile's processes on each backend and measure them.

    python -m tests.bench [--backend postgres|embedded]... [--quick] [--output PATH]

Runs every benchmark of tests/bench/suite.py on each backend (Postgres + Redis, then the
embedded default), prints a table of each figure next to its target (met or MISSED), and
writes the figures, the machine (cores, versions) and the backends to docs/bench/results.json,
which the README's performance section is copied from, with the history of the key figures
(tests/bench/versions.py) that docs/bench/history.svg draws (tests/bench/chart.py). Figures,
not asserts: nothing fails on a slow machine. ``--quick`` is a tiny run (about a minute;
tests/e2e/test_bench_smoke.py runs it), which writes no file unless ``--output`` says where,
and adds nothing to the history: its figures are not comparable.
"""

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from tests.bench import chart, versions
from tests.bench.suite import run_backend
from tests.bench.targets import table
from tests.system import ROOT

RESULTS = chart.RESULTS
BACKENDS = {"postgres": "Postgres + Redis", "embedded": "embedded default (SQLite)"}
PACKAGES = ("huey", "peewee", "flask", "gunicorn", "redis", "psycopg2-binary", "requests")


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "versions": {name: metadata.version(name) for name in PACKAGES},
    }


def report(name: str, result: dict, quick: bool) -> None:
    servers = ", ".join(f"{k} {v}" for k, v in result["servers"].items())
    mode = "quick: tiny sizes, no verdicts" if quick else "full"
    print(f"\n{BACKENDS[name]} ({servers}; {os.cpu_count()} cores; {mode}):")
    print(table(result["targets"]))
    judged = [row["met"] for row in result["targets"] if row["met"] is not None]
    if judged:
        print(f"  {sum(judged)} of {len(judged)} targets met")


def write(results: dict, output: Path) -> None:
    """The results to ``output``; a full run's also to the history, and the chart redrawn."""
    if not results["quick"]:
        previous = json.loads(output.read_text()) if output.exists() else None
        results = versions.with_history(results, previous, ROOT)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"written to {output}")
    if not results["quick"] and output == RESULTS:
        chart.draw(results["history"])
        print(f"and the chart of its history to {chart.CHART}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--backend", choices=tuple(BACKENDS), action="append")
    parser.add_argument("--quick", action="store_true", help="a tiny run of every benchmark")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"the JSON file to write ({RESULTS.relative_to(ROOT)}; none if --quick)",
    )
    args = parser.parse_args()
    output = args.output or (None if args.quick else RESULTS)
    results = {"machine": machine(), "quick": args.quick, "backends": {}}
    started = time.monotonic()
    for name in args.backend or list(BACKENDS):
        result = run_backend(name, args.quick)
        results["backends"][name] = {"backend": BACKENDS[name], **result}
        report(name, result, args.quick)
    results["took_s"] = round(time.monotonic() - started, 1)
    print(f"\ntook {results['took_s']} s")
    if output:
        write(results, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
