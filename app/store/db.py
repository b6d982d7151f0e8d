"""The metadata database: one peewee proxy, bound to Postgres or SQLite from DATABASE_URL."""

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import peewee
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

from app.config import Settings, current

db = peewee.DatabaseProxy()
log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {  # and busy_timeout, from BRISA_SQLITE_BUSY_TIMEOUT_MS
    "synchronous": "normal",
    "foreign_keys": 1,
}


def open_database(url: str, settings: Settings | None = None) -> peewee.Database:
    """The database at ``url``, tuned by ``settings`` (default: this process's)."""
    settings = settings or current()
    scheme = urlparse(url).scheme
    if scheme in ("postgres", "postgresql"):
        params = parse(url)
        database = params.pop("database")
        return KeepingPooledPostgres(
            database,
            max_connections=settings.db_pool_size,
            stale_timeout=settings.db_pool_stale_s,
            **params,
        )
    if scheme == "sqlite":
        path = url[len("sqlite:///") :]
        _ensure_wal(path)
        # Writers from the web, worker and clock processes wait their turn for busy_timeout.
        pragmas = {"busy_timeout": settings.sqlite_busy_timeout_ms, **SQLITE_PRAGMAS}
        # IMMEDIATE: a transaction takes the write lock at BEGIN, so two writers never
        # deadlock upgrading a read lock (a SQLITE_BUSY that busy_timeout cannot fix).
        return PatientSqliteDatabase(path, pragmas=pragmas, lock_type="IMMEDIATE")
    raise ValueError(
        f"DATABASE_URL must be postgres://, postgresql:// or sqlite:///, not {scheme!r}"
    )


class KeepsConnectionContexts:
    """peewee resets a thread's open connection contexts when it closes or opens its
    connection; discard_connection() does both inside a context (after a database error),
    and leaving the context then raised IndexError. Here the open contexts outlive the
    reconnection, and the last one to leave closes the connection as usual."""

    _state: Any

    def connect(self, reuse_if_open=False):
        contexts = list(self._state.ctx)
        try:
            return super().connect(reuse_if_open)  # type: ignore[misc]
        finally:
            self._state.ctx[:] = contexts or self._state.ctx

    def close(self):
        contexts = list(self._state.ctx)
        try:
            return super().close()  # type: ignore[misc]
        finally:
            self._state.ctx[:] = contexts


class KeepingPooledPostgres(KeepsConnectionContexts, PooledPostgresqlDatabase):
    """Postgres with a pool of connections, whose contexts survive a reconnection."""


LOCKED_PATIENCE_S = 60.0  # past busy_timeout, how long a SQLite writer keeps trying


class PatientSqliteDatabase(KeepsConnectionContexts, peewee.SqliteDatabase):
    """SQLite that never surfaces "database is locked" while other processes write (the web,
    the worker and the clock share one file): a BEGIN, or a statement outside a transaction,
    or the pragmas of a new connection, that met SQLITE_BUSY after busy_timeout changed
    nothing, so it is tried again with jittered backoff for up to LOCKED_PATIENCE_S. Inside a
    transaction nothing is retried: BEGIN IMMEDIATE holds the write lock already."""

    def _connect(self):
        # A new connection's pragmas can meet a lock too (WAL recovery, a checkpoint).
        return _patiently(super()._connect)  # type: ignore[misc]  # not in the stubs

    def begin(self, lock_type=None):
        _patiently(lambda: super(PatientSqliteDatabase, self).begin(lock_type))

    def execute_sql(self, sql, params=None):
        run = super().execute_sql
        if self.in_transaction():
            return run(sql, params)
        return _patiently(lambda: run(sql, params))


def _patiently(action):
    deadline = time.monotonic() + LOCKED_PATIENCE_S
    wait = 0.005
    while True:
        try:
            return action()
        except (peewee.OperationalError, sqlite3.OperationalError) as exc:  # _connect: raw
            if "database is locked" not in str(exc) or time.monotonic() + wait > deadline:
                raise
            log.debug("SQLite is locked by another writer; trying again in %.3fs", wait)
            time.sleep(wait * (0.5 + random.random()))
            wait = min(wait * 2, 0.25)


def create_private(path: str | Path) -> None:
    """Create the file at ``path`` readable by its owner only (0600), unless it exists: a
    SQLite database (and its -wal and -shm files, which SQLite gives the database's mode)
    holds every function's source and the encrypted secrets."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _ensure_wal(path: str, attempts: int = 100) -> None:
    """WAL is a property of the file, set once. Two processes setting it on a new file at the
    same moment: one gets SQLITE_BUSY at once (no busy handler applies), so it retries."""
    create_private(path)
    for attempt in range(attempts):
        try:
            with closing(sqlite3.connect(path, timeout=10)) as connection:
                connection.execute("PRAGMA journal_mode=wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02)


def bind(url: str, settings: Settings | None = None) -> peewee.Database:
    """Point the proxy at the database for ``url`` (closing any previous one)."""
    if db.obj is not None and not db.obj.is_closed():
        db.obj.close()
    database = open_database(url, settings)
    db.initialize(database)
    return database


def is_postgres() -> bool:
    return isinstance(db.obj, peewee.PostgresqlDatabase)


_binding = threading.Lock()


def ensure_bound() -> None:
    """Bind the proxy from the environment if nothing has bound it yet (worker, clock).
    Once per process, whichever thread comes first: a second bind would swap the database
    under the first thread's open connection context (peewee's proxy follows ``db.obj``)."""
    if db.obj is not None:
        return
    with _binding:
        if db.obj is None:
            bind(current().database_url)


DB_ERRORS = (peewee.OperationalError, peewee.InterfaceError)  # the database is unreachable


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


class Slot(peewee.Node):
    """A parameter of a ``Compiled`` statement, given its value at each execution. Its value
    goes through ``field``'s db_value, or else the converter peewee applies where it stands
    (the left-hand field of a comparison)."""

    def __init__(self, name: str, field: peewee.Field | None = None):
        super().__init__()
        self.name, self.field = name, field

    def __sql__(self, ctx):
        convert = self.field.db_value if self.field is not None else ctx.state.converter
        ctx._values.append(_Fill(self.name, convert))
        return ctx.literal(ctx.state.param or "?")


class _Fill:
    def __init__(self, name: str, convert):
        self.name, self.convert = name, convert

    def value(self, values: dict):
        value = values[self.name]
        return self.convert(value) if self.convert else value


class Compiled:
    """A peewee query of fixed shape whose SQL is generated once per database, then run with
    new values (``Slot`` parameters). On the hot path of a try, peewee's SQL generation cost
    more CPU than the round trips; this keeps the queries written in peewee."""

    def __init__(self, build):
        self.build = build  # () -> a peewee query using Slot(...) for its variable values
        self._compiled = None  # (database, query, sql, params template)

    def _get(self):
        compiled = self._compiled
        if compiled is None or compiled[0]() is not db.obj:
            query = self.build()
            sql, params = query.sql()
            # A weak reference: a database the process has moved on from (tests bind a new
            # one each time) is freed with its pool of connections.
            compiled = self._compiled = (weakref.ref(db.obj), query, sql, params)
        return compiled[1:]

    def _execute(self, values: dict):
        query, sql, template = self._get()
        params = [p.value(values) if isinstance(p, _Fill) else p for p in template]
        return query, db.execute_sql(sql, params)

    def rowcount(self, **values) -> int:
        """Run an UPDATE or DELETE; how many rows it changed."""
        return self._execute(values)[1].rowcount

    def rows(self, **values) -> list:
        """Run a SELECT; its rows, as the query would return them (models, tuples...)."""
        query, cursor = self._execute(values)
        return list(query._get_cursor_wrapper(cursor))

    def first(self, **values):
        rows = self.rows(**values)
        return rows[0] if rows else None


class CompiledIn:
    """``Compiled`` for a query with one list parameter (an ``IN``), one per length of the
    list up to ``longest``; a longer list is run uncompiled. ``build(ids, **params)`` gets
    Slots when compiling and the values themselves otherwise."""

    def __init__(self, build, longest: int = 32):
        self.build, self.longest = build, longest
        self._by_length: dict[int, Compiled] = {}

    def rows(self, ids: list, **values) -> list:
        if len(ids) > self.longest:
            return list(self.build(ids, **values))
        compiled = self._by_length.get(len(ids))
        if compiled is None:
            id_slots = [Slot(f"_id{i}") for i in range(len(ids))]
            slots = {name: Slot(name) for name in values}
            compiled = Compiled(lambda: self.build(id_slots, **slots))
            self._by_length[len(ids)] = compiled
        return compiled.rows(**values, **{f"_id{i}": v for i, v in enumerate(ids)})


def cache_of(name: str, size: int = 1024) -> dict:
    """A dict kept on the bound database object, for rows that never change (a function
    version, a DAG's id): it goes when the database goes, and is emptied past ``size``."""
    caches = db.obj.__dict__.setdefault("_brisa_caches", {})
    cache = caches.setdefault(name, {})
    if len(cache) >= size:
        cache.clear()
    return cache
