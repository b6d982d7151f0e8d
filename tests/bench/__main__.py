"""``make bench``: start the Procfile's processes on each backend and measure them.

Prints a table and writes docs/bench/results.json (the README's performance section is
copied from it). Figures, not asserts: nothing here fails on a slow machine.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path

import requests

from tests.system import AUTH, ROOT, deploy_examples_over_http, procfile_system, wait_for_state

RESULTS = ROOT / "docs" / "bench" / "results.json"
NOOP = "def handler(event, context):\n    return event['upstream'] and 1\n"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def post(base: str, path: str, body=None) -> dict:
    response = requests.post(f"{base}{path}", json=body, headers=AUTH, timeout=60)
    response.raise_for_status()
    return response.json()


def example_pipeline(base: str, runs: int) -> dict:
    """The example DAG (fan-out of two, a join): trigger to success, over the API."""
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        run = post(base, "/api/v1/dags/example_pipeline/runs", {"conf": {"name": "bench"}})
        assert wait_for_state(base, run["run_id"], poll_s=0.005)["state"] == "success"
        durations.append(time.perf_counter() - started)
    return {
        "runs": runs,
        "trigger_to_success_p50_ms": round(statistics.median(durations) * 1000, 1),
        "trigger_to_success_p95_ms": round(percentile(durations, 95) * 1000, 1),
    }


def chain(base: str, length: int) -> dict:
    """A chain of no-op tasks: wall time and the gap from one task's end to the next's start."""
    post(base, "/api/v1/functions", {"name": "noop", "source": NOOP})
    tasks = [
        {"task_id": f"t{i}", "function": "noop", "upstream": [f"t{i - 1}"] if i else []}
        for i in range(length)
    ]
    requests.put(
        f"{base}/api/v1/dags/chain{length}",
        json={"dag_id": f"chain{length}", "tasks": tasks},
        headers=AUTH,
        timeout=30,
    ).raise_for_status()
    started = time.perf_counter()
    run = post(base, f"/api/v1/dags/chain{length}/runs")
    finished = wait_for_state(base, run["run_id"], timeout=300, poll_s=0.005)
    wall = time.perf_counter() - started
    assert finished["state"] == "success"
    by_id = {t["task_id"]: t for t in finished["tasks"]}
    gaps = [
        (
            parse_time(by_id[f"t{i}"]["started_at"]) - parse_time(by_id[f"t{i - 1}"]["finished_at"])
        ).total_seconds()
        for i in range(1, length)
    ]
    return {
        "tasks": length,
        "wall_s": round(wall, 3),
        "handoff_p50_ms": round(statistics.median(gaps) * 1000, 1),
        "handoff_p95_ms": round(percentile(gaps, 95) * 1000, 1),
    }


def invoke(base: str, calls: int) -> dict:
    """POST /functions/noop/invoke?wait=5, one client, sequential."""
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        body = post(base, "/api/v1/functions/noop/invoke?wait=5", {})
        latencies.append(time.perf_counter() - started)
        assert body["state"] == "success"
    return {
        "calls": calls,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def run_backend(name: str, quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "processes.log", "w") as log:
        with procfile_system(name, Path(tmp) / "var", output=log) as system:
            base = system.base
            deploy_examples_over_http(base)
            wait_for_state(base, post(base, "/api/v1/dags/example_pipeline/runs")["run_id"])
            return {
                "example_pipeline": example_pipeline(base, 5 if quick else 30),
                "chain10": chain(base, 10),
                "invoke": invoke(base, 20 if quick else 200),
            }


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            p: metadata.version(p) for p in ("huey", "peewee", "flask", "gunicorn", "redis")
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--backend", choices=("postgres", "embedded"), action="append")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    results = {"machine": machine(), "backends": {}}
    for name in args.backend or ["postgres", "embedded"]:
        results["backends"][name] = run_backend(name, args.quick)
        print(f"\n{name}:")
        for bench, figures in results["backends"][name].items():
            print(f"  {bench:<18} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
