"""The metadata database: one peewee proxy, bound to Postgres or SQLite from DATABASE_URL."""

from urllib.parse import urlparse

import peewee
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

db = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 10000,  # ms: writers from web, worker and clock processes wait their turn
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
        # IMMEDIATE: a transaction takes the write lock at BEGIN, so two writers never
        # deadlock upgrading a read lock (a SQLITE_BUSY that busy_timeout cannot fix).
        return peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE")
    raise ValueError(
        f"DATABASE_URL must be postgres://, postgresql:// or sqlite:///, not {scheme!r}"
    )


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
