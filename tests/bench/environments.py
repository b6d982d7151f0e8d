"""Execution environments, measured in this process against the real parts (uv, the fork
server, warm executors): no Brisa server needed, so the figures are the same on each backend.

- warm try: one no-op try in an idle executor of its version, job sent to outcome read (ms);
- cold executor: the first try of a version whose environment is already built (ms);
- deploy with one small package: resolve, build and the import check, the wheel in uv's cache;
- idle executor RSS after one try (MB).
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from app.engine import environments, functions
from app.sandbox import executors
from app.sandbox.job import Job
from app.sandbox.supervisor import Observer
from tests.unit.engine.wheels import make_wheel

NOOP = "def handler(event, context):\n    return None\n"
WITH_PACKAGE = (
    "# /// script\n# dependencies = ['brisa-bench-pkg']\n# ///\n"
    "import brisa_bench_pkg\n"
    "def handler(event, context):\n    return brisa_bench_pkg.VALUE\n"
)


class Discard(Observer):
    def output(self, text: str) -> None:
        pass


def job(source: str, filename: str) -> Job:
    return Job(
        runtime="python",
        source=source,
        handler="handler",
        filename=filename,
        memory_mb=512,
        result_cap_bytes=1 << 20,
    )


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


def warm_and_cold(python: str, warm_tries: int, cold_tries: int) -> dict:
    pool = executors.Pool(executors.Limits(max_tries=warm_tries + 10))
    try:
        cold = []
        for n in range(cold_tries):
            tried = job(NOOP, f"<function cold{n} v1>")
            started = time.perf_counter()
            pool.run(executors.Spawn.of(tried, python), tried, 30, Discard())
            cold.append((time.perf_counter() - started) * 1000)
        tried = job(NOOP, "<function warm v1>")
        spawn = executors.Spawn.of(tried, python)
        pool.run(spawn, tried, 30, Discard())
        warm = []
        for _ in range(warm_tries):
            started = time.perf_counter()
            pool.run(spawn, tried, 30, Discard())
            warm.append((time.perf_counter() - started) * 1000)
        (idle,) = [e for e in pool._idle.values() if e.spawn.key == spawn.key]
        rss_mb = (idle.rss_kb() or 0) / 1024
    finally:
        pool.stop_all()
    return {
        "warm_try_p50_ms": round(statistics.median(warm), 3),
        "warm_try_p95_ms": round(percentile(warm, 0.95), 3),
        "cold_executor_p50_ms": round(statistics.median(cold), 1),
        "idle_executor_rss_mb": round(rss_mb, 1),
    }


def deploy_with_a_package(tmp: Path) -> float:
    """Seconds to resolve, build and check a function with one small package whose wheel uv
    has cached (a first deploy fills the cache; the second, into a new environment folder, is
    measured)."""
    wheels = tmp / "wheels"
    wheels.mkdir()
    make_wheel(
        wheels, "brisa_bench_pkg", "1.0.0", files={"brisa_bench_pkg/__init__.py": "VALUE = 1\n"}
    )
    saved = dict(os.environ)
    os.environ.update(UV_FIND_LINKS=str(wheels), UV_NO_INDEX="1", UV_CACHE_DIR=str(tmp / "uv"))
    try:
        seconds = 0.0
        for attempt in range(2):
            started = time.perf_counter()
            lock = environments.resolve(["brisa-bench-pkg"], timeout_s=60)
            built = environments.ensure_built(
                lock.text, env_dir=tmp / f"envs{attempt}", cache_mb=500, timeout_s=120
            )
            error = functions.load_check_error(json.dumps(_check_job()), 30, str(built.python))
            assert error is None, error
            seconds = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return seconds


def _check_job() -> dict:
    return {
        "runtime": "python",
        "source": WITH_PACKAGE,
        "handler": "handler",
        "filename": "<function bench>",
        "env": {},
        "memory_mb": 512,
        "result_cap_bytes": 1 << 20,
    }


def measure(quick: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="brisa-bench-envs-") as folder:
        tmp = Path(folder)
        python = str(environments.ensure_built("", env_dir=tmp / "empty", cache_mb=500).python)
        figures = warm_and_cold(python, 50 if quick else 1000, 2 if quick else 10)
        figures["deploy_with_package_s"] = round(deploy_with_a_package(tmp), 2)
    return figures
