"""Every Postgres advisory-lock key Brisa takes, in one place.

Transaction-scoped locks (``pg_advisory_xact_lock``), released by the commit. Two-key locks
name their kind by the first key and the object by the second. On SQLite every write
transaction already holds the database's write lock (``BEGIN IMMEDIATE``), so each helper
does nothing there.
"""

import zlib

from app.store.db import db, is_postgres

MIGRATION = 0x62726973  # "bris": one key, the schema migration
DAG_SLOTS = 1  # (1, dag pk): the max_active_tasks check of one DAG
POOL_SLOTS = 2  # (2, crc32 of the pool's name): the slot check of one pool
RUN_STARTS = 3  # (3, dag pk): starting a DAG's queued runs (max_active_runs)


def take(kind: int, key: int | None = None) -> None:
    """Hold lock ``(kind, key)`` (or ``kind`` alone) until this transaction ends."""
    if not is_postgres():
        return
    if key is None:
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (kind,))
    else:
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (kind, key))


def take_many(kind: int, keys: list[int]) -> None:
    """Hold ``(kind, key)`` for every key, taken in the order given (ascending keys, so that two
    takers never deadlock), in one statement."""
    if is_postgres() and keys:
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s) AS k", (kind, keys))


def name_key(name: str) -> int:
    """A name as a lock's second key: its CRC-32 shifted into a signed 32-bit int."""
    return zlib.crc32(name.encode()) - 2**31
