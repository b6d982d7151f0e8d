"""The bare huey baseline: a real ``huey_consumer`` of tests/bench/raw_huey.py, started with
the Procfile worker line's own flags (only the huey instance and the thread count differ),
on the same Redis as Brisa (another db), or on huey's SQLite storage for the embedded default.
"""

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

from app.cli import devserver
from tests.bench import raw_huey
from tests.system import ROOT

POLL_S = 0.005


def consumer_command() -> str:
    worker = devserver.read_procfile(ROOT / "Procfile")["worker"]
    assert "app.worker.consumer.huey" in worker, worker
    return worker.replace("app.worker.consumer.huey", "tests.bench.raw_huey.huey")


def consumer_env(threads: int, sqlite_path: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "BRISA_BENCH_HUEY_SQLITE"}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        BRISA_WORKER_THREADS=str(threads),
        BRISA_BENCH_HUEY_REDIS_URL=raw_huey.REDIS_URL,
    )
    if sqlite_path:
        env["BRISA_BENCH_HUEY_SQLITE"] = sqlite_path
    return env


def wait_for_results(count: int, timeout: float = 120) -> dict:
    """The results once ``count`` tasks have stored theirs, by task id."""
    deadline = time.monotonic() + timeout
    while raw_huey.huey.result_count() < count:
        assert time.monotonic() < deadline, f"bare huey: {raw_huey.huey.result_count()}/{count}"
        time.sleep(POLL_S)
    serializer = raw_huey.huey.serializer
    return {
        key: serializer.deserialize(value) for key, value in raw_huey.huey.all_results().items()
    }


@contextlib.contextmanager
def consumer(threads: int, sqlite_path: str | None, output):
    """A running bare consumer, warmed up by one task, with an empty queue and result store."""
    raw_huey.huey.flush()
    process = devserver.start(consumer_command(), consumer_env(threads, sqlite_path), output=output)
    try:
        raw_huey.noop()
        wait_for_results(1, timeout=30)
        raw_huey.huey.flush()
        yield process
    finally:
        devserver.stop([process])
        raw_huey.huey.flush()


def chain(length: int, runs: int) -> dict:
    """Bare huey's chain, each task enqueueing the next: the median of ``runs``."""
    walls = []
    for _ in range(runs):
        raw_huey.huey.storage.flush_results()
        started = time.time()
        raw_huey.chain(length)
        (last,) = wait_for_results(1).values()
        walls.append(last["finished"] - started)
    median = round(statistics.median(walls), 4)
    return {"tasks": length, "runs": runs, "wall_s": median, "total": last["total"]}


def throughput(tasks: int) -> dict:
    started = time.time()
    for _ in range(tasks):
        raw_huey.noop()
    finished = max(wait_for_results(tasks).values())
    return {"tasks": tasks, "tasks_per_s": round(tasks / (finished - started), 1)}


def measure(sizes, threads: int, sqlite_path: str | None, output) -> dict:
    """A chain on one thread, then no-op throughput on ``threads``, as Brisa's are run
    (``sizes``: tests/bench/suite.py's)."""
    raw_huey.use_storage(sqlite_path)
    with consumer(1, sqlite_path, output):
        chained = chain(sizes.chain, sizes.chain_runs)
    with consumer(threads, sqlite_path, output):
        parallel = throughput(sizes.raw_tasks)
    storage = "huey SQLite storage" if sqlite_path else f"Redis {raw_huey.REDIS_URL}"
    return {"storage": storage, "chain": chained, "noop": {**parallel, "threads": threads}}
