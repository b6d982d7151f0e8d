"""The bare huey baseline: a real ``huey_consumer`` of tests/bench/raw_huey.py, started with
the Procfile worker line's own flags (only the huey instance and the thread count differ),
on the same Redis server as Brisa (another database), or on huey's SQLite storage for the
embedded default.
"""

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

from app.cli import devserver
from tests.bench import raw_huey
from tests.bench.measure import percentile
from tests.system import ROOT

POLL_S = 0.005


def consumer_command() -> str:
    worker = devserver.read_procfile(ROOT / "Procfile")["worker"]
    assert "app.worker.consumer.huey" in worker, worker
    return worker.replace("app.worker.consumer.huey", "tests.bench.raw_huey.huey")


def consumer_env(threads: int, sqlite_path: str | None, redis_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "BRISA_BENCH_HUEY_SQLITE"}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        BRISA_WORKER_THREADS=str(threads),
        BRISA_BENCH_HUEY_REDIS_URL=redis_url,
    )
    if sqlite_path:
        env["BRISA_BENCH_HUEY_SQLITE"] = sqlite_path
    return env


def wait_for_value(key: str, timeout: float = 120):
    """The value a last task stored under ``key``, taken from the store once it is there."""
    deadline = time.monotonic() + timeout
    while (value := raw_huey.huey.get(key)) is None:
        assert time.monotonic() < deadline, f"bare huey: no {key!r} after {timeout} s"
        time.sleep(POLL_S)
    return value


@contextlib.contextmanager
def consumer(threads: int, sqlite_path: str | None, redis_url: str, output):
    """A running bare consumer, warmed up by a few tasks, with an empty queue."""
    raw_huey.huey.flush()
    env = consumer_env(threads, sqlite_path, redis_url)
    process = devserver.start(consumer_command(), env, output=output)
    try:
        noops(threads, timeout=30)
        yield process
    finally:
        devserver.stop([process])
        raw_huey.huey.flush()


def noops(count: int, timeout: float = 120) -> float:
    """Enqueue ``count - 1`` no-ops and the marker after them; when the marker ran (its
    clock), every no-op was taken, and the few still running on other threads return at
    once."""
    for _ in range(count - 1):
        raw_huey.noop()
    raw_huey.last_noop()
    return wait_for_value(raw_huey.NOOPS_KEY, timeout)


def chain(length: int, runs: int) -> dict:
    """Bare huey's chain, each link enqueueing the next: the median of ``runs``, and the
    hand-offs (a link's enqueue of the next to the next one's first line)."""
    walls, gaps = [], []
    for _ in range(runs):
        started = time.time()
        raw_huey.chain(length)
        last = wait_for_value(raw_huey.CHAIN_KEY)
        walls.append(last["finished"] - started)
        gaps += last["handoffs_s"]
    return {
        "tasks": length,
        "runs": runs,
        "wall_s": round(statistics.median(walls), 4),
        "handoff_p50_ms": round(statistics.median(gaps) * 1000, 3),
        "handoff_p95_ms": round(percentile(gaps, 95) * 1000, 3),
        "total": last["total"],
    }


def throughput(tasks: int) -> dict:
    started = time.time()
    finished = noops(tasks)
    return {"tasks": tasks, "tasks_per_s": round(tasks / (finished - started), 1)}


def measure(sizes, threads: int, sqlite_path: str | None, redis_url: str, output) -> dict:
    """A chain on one thread, then no-op throughput on ``threads``, as Brisa's are run
    (``sizes``: tests/bench/suite.py's), on huey's SQLite storage at ``sqlite_path`` if
    given, else on Redis at ``redis_url``."""
    raw_huey.use_storage(sqlite_path, redis_url)
    with consumer(1, sqlite_path, redis_url, output):
        chained = chain(sizes.chain, sizes.chain_runs)
    with consumer(threads, sqlite_path, redis_url, output):
        parallel = throughput(sizes.raw_tasks)
    storage = "huey SQLite storage" if sqlite_path else f"Redis {redis_url}"
    settings = "no result store, signed messages (as app/broker.py)"
    return {
        "storage": storage,
        "settings": settings,
        "chain": chained,
        "noop": {**parallel, "threads": threads},
    }
