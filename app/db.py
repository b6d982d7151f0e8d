"""The metadata database: one peewee proxy, bound to Postgres or SQLite from DATABASE_URL."""

import logging
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

db = peewee.DatabaseProxy()
log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "busy_timeout": 10000,  # ms: writers from web, worker and clock processes wait their turn
    "synchronous": "normal",
    "foreign_keys": 1,
}


def open_database(url: str) -> peewee.Database:
    scheme = urlparse(url).scheme
    if scheme in ("postgres", "postgresql"):
        params = parse(url)
        database = params.pop("database")
        return PooledPostgresqlDatabase(database, max_connections=64, stale_timeout=300, **params)
    if scheme == "sqlite":
        path = url[len("sqlite:///") :]
        _ensure_wal(path)
        # IMMEDIATE: a transaction takes the write lock at BEGIN, so two writers never
        # deadlock upgrading a read lock (a SQLITE_BUSY that busy_timeout cannot fix).
        return peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE")
    raise ValueError(
        f"DATABASE_URL must be postgres://, postgresql:// or sqlite:///, not {scheme!r}"
    )


def _ensure_wal(path: str, attempts: int = 100) -> None:
    """WAL is a property of the file, set once. Two processes setting it on a new file at the
    same moment: one gets SQLITE_BUSY at once (no busy handler applies), so it retries."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            with closing(sqlite3.connect(path, timeout=10)) as connection:
                connection.execute("PRAGMA journal_mode=wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02)


def bind(url: str) -> peewee.Database:
    """Point the proxy at the database for ``url`` (closing any previous one)."""
    if db.obj is not None and not db.obj.is_closed():
        db.obj.close()
    database = open_database(url)
    db.initialize(database)
    return database


def is_postgres() -> bool:
    return isinstance(db.obj, peewee.PostgresqlDatabase)


def ensure_bound() -> None:
    """Bind the proxy from the environment if nothing has bound it yet (worker, clock)."""
    if db.obj is None:
        from app.config import current

        bind(current().database_url)


DB_ERRORS = (peewee.OperationalError, peewee.InterfaceError)


def retrying(action, seconds: float, first_wait_s: float = 0.2, max_wait_s: float = 5.0):
    """``action()``, tried again with backoff while the database is unreachable, for up to
    ``seconds``; the last error is raised after that."""
    deadline = time.monotonic() + seconds
    wait = first_wait_s
    while True:
        try:
            return action()
        except DB_ERRORS:
            if time.monotonic() + wait > deadline:
                raise
            log.warning("database unreachable; trying again in %.1fs", wait)
            discard_connection()
            time.sleep(wait)
            wait = min(wait * 2, max_wait_s)


def discard_connection() -> None:
    """After a database error: drop this connection and the pool's idle ones, which were most
    likely cut by the same outage."""
    try:
        db.close()
        if hasattr(db.obj, "close_idle"):
            db.obj.close_idle()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped
        pass
