"""Bare huey, the engine Brisa is built on: the baseline its figures are divided by.

``huey_consumer tests.bench.raw_huey.huey`` runs it with the flags of the Procfile's worker
line (tests/bench/baseline.py starts it). The storage is what app/broker.py would build: Redis
at BRISA_BENCH_HUEY_REDIS_URL (by default a Redis database of its own, never the app's), or
huey's SQLite storage in the file BRISA_BENCH_HUEY_SQLITE when that is set (the embedded
default's baseline).
"""

import os
import time

from huey import Huey
from huey.storage import RedisStorage, SqliteStorage

from tests.conftest import redis_db

REDIS_URL = redis_db("BRISA_BENCH_HUEY_REDIS_URL")


def storage_for(sqlite_path: str | None) -> tuple[type, dict]:
    if sqlite_path:
        return SqliteStorage, {"filename": sqlite_path, "timeout": 10}
    return RedisStorage, {"url": REDIS_URL}


def use_storage(sqlite_path: str | None) -> None:
    """Point this process's instance at another storage (the bench switches backends)."""
    huey.storage_class, huey.storage_kwargs = storage_for(sqlite_path)
    huey.storage = huey.create_storage()


storage_class, storage_kwargs = storage_for(os.environ.get("BRISA_BENCH_HUEY_SQLITE"))
# Results on: a finished task stores its finish time, which is how the bench counts and times.
huey = Huey("brisa-bench-raw", utc=True, storage_class=storage_class, **storage_kwargs)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@huey.task()
def noop() -> float:
    return time.time()


@huey.task()
def chain(remaining: int, total: int = 0) -> dict | None:
    """One link: compute fib(10), pass the sum on to the next link; the last one stores it."""
    total += fib(10)
    if remaining > 1:
        chain(remaining - 1, total)
        return None
    return {"finished": time.time(), "total": total}
