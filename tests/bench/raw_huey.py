"""Bare huey, the engine Brisa is built on: the baseline its figures are divided by.

``huey_consumer tests.bench.raw_huey.huey`` runs it with the flags of the Procfile's worker
line (tests/bench/baseline.py starts it). It is configured as app/broker.py's ``make_huey``
configures Brisa's: no result store (``results=False``: a task's return value is dropped, as
a try's outcome goes to the database instead), messages signed (huey's SignedSerializer: a
pickle and an HMAC of it, as Brisa's SignedMessages), UTC. The storage is what app/broker.py
would build: Redis at BRISA_BENCH_HUEY_REDIS_URL (by default a Redis database of its own,
never the app's), or huey's SQLite storage in the file BRISA_BENCH_HUEY_SQLITE when that is
set (the embedded default's baseline).

With no result store, a workload's last task alone writes one value (``huey.put``), which the
bench waits for: the chain's last link, and the marker enqueued after a batch of no-ops.
"""

import os
import time

from huey import Huey
from huey.serializer import SignedSerializer
from huey.storage import RedisStorage, SqliteStorage

from tests.conftest import redis_db

REDIS_URL = redis_db("BRISA_BENCH_HUEY_REDIS_URL")
SECRET = "brisa-bench-raw"
CHAIN_KEY, NOOPS_KEY = "chain", "noops"


def storage_for(sqlite_path: str | None, redis_url: str = REDIS_URL) -> tuple[type, dict]:
    if sqlite_path:
        return SqliteStorage, {"filename": sqlite_path, "timeout": 10}
    return RedisStorage, {"url": redis_url}


def use_storage(sqlite_path: str | None, redis_url: str = REDIS_URL) -> None:
    """Point this process's instance at another storage (the bench switches backends)."""
    huey.storage_class, huey.storage_kwargs = storage_for(sqlite_path, redis_url)
    huey.storage = huey.create_storage()


storage_class, storage_kwargs = storage_for(os.environ.get("BRISA_BENCH_HUEY_SQLITE"))
huey = Huey(
    "brisa-bench-raw",
    results=False,
    utc=True,
    serializer=SignedSerializer(secret=SECRET),
    storage_class=storage_class,
    **storage_kwargs,
)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@huey.task()
def noop() -> None:
    return None


@huey.task()
def last_noop() -> None:
    """Enqueued after a batch of no-ops: when it runs, every one of them has been taken."""
    huey.put(NOOPS_KEY, time.time())


@huey.task()
def chain(remaining: int, total: int = 0, handed_at: float = 0.0, gaps: tuple = ()) -> None:
    """One link: compute fib(10) and enqueue the next link with the sum so far; the last one
    stores the sum, its finish time, and each hand-off (a link's enqueue of the next to the
    next one's first line, in seconds)."""
    first_line = time.time()
    gaps = (*gaps, first_line - handed_at) if handed_at else gaps
    total += fib(10)
    if remaining > 1:
        chain(remaining - 1, total, time.time(), gaps)
        return
    huey.put(CHAIN_KEY, {"finished": time.time(), "total": total, "handoffs_s": gaps})
