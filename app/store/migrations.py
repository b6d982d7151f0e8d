"""Schema creation and upgrades: ``python -m app migrate`` (the Procfile's release step).

A fresh database gets every table from the current models and is stamped with the latest
version. An existing one runs each step above its stamped version, in order. To change the
schema: change the model, then append a step here (e.g. ``playhouse.migrate`` add_column)
that brings an older database to the same shape.

Safe to run twice and from two processes at once: the whole migration is one transaction
holding a lock (a Postgres advisory lock; SQLite's BEGIN IMMEDIATE write lock).
"""

import contextlib
import logging

import peewee as pw
from playhouse import migrate as schema

from app.store import locks
from app.store.db import db, is_postgres
from app.store.models import (
    ALL_MODELS,
    SLOWEST_BUCKET,
    TRY_DURATION_BOUNDS,
    AuditEvent,
    Metric,
    NeverReusedId,
    Pool,
    SchemaVersion,
    Secret,
    TaskTry,
    TryDuration,
    UiSession,
)

log = logging.getLogger(__name__)


EXTRA_DDL = [  # what peewee's models cannot say, run after create_tables
    # One scheduled run per (dag, logical_date), however many clocks tick: the database says
    # so, not only the code.
    "CREATE UNIQUE INDEX IF NOT EXISTS dag_run_scheduled_once ON dag_run (dag_id, logical_date)"
    " WHERE run_type IN ('scheduled', 'backfill')",
]


def _v2_scheduling() -> None:
    """Schedules (the DAG's next run), data intervals, dagrun_timeout, retry backoff, and
    the history of each task instance's tries."""
    migrator = schema.SchemaMigrator.from_database(db.obj)
    schema.migrate(
        migrator.add_column("dag", "next_run_at", pw.DateTimeField(null=True)),
        migrator.add_index("dag", ("next_run_at",)),
        migrator.add_column("dag_run", "data_interval_start", pw.DateTimeField(null=True)),
        migrator.add_column("dag_run", "data_interval_end", pw.DateTimeField(null=True)),
        migrator.add_column("dag_run", "timeout_at", pw.DateTimeField(null=True)),
        migrator.add_column("task_instance", "retry_backoff", pw.BooleanField(default=False)),
        migrator.add_column("task_instance", "max_retry_delay", pw.FloatField(default=3600)),
    )
    db.create_tables([TaskTry])


def _v3_slots() -> None:
    """Pools and max_active_tasks: slot counts per DAG and per pool."""
    migrator = schema.SchemaMigrator.from_database(db.obj)
    db.create_tables([Pool])
    schema.migrate(
        migrator.add_column("dag_run", "max_active_tasks", pw.IntegerField(null=True)),
        migrator.add_column("task_instance", "dag_pk", pw.IntegerField(null=True)),
        migrator.add_column("task_instance", "pool", pw.CharField(max_length=100, null=True)),
        migrator.add_column("task_instance", "parked", pw.BooleanField(default=False)),
        migrator.add_index("task_instance", ("dag_pk", "state")),
        migrator.add_index("task_instance", ("pool", "state")),
    )


def _v4_metrics() -> None:
    db.create_tables([Metric])


def _v5_webhooks_and_secrets() -> None:
    migrator = schema.SchemaMigrator.from_database(db.obj)
    db.create_tables([Secret])
    schema.migrate(
        migrator.add_column("dag", "webhook_secret", pw.TextField(null=True)),
        migrator.add_column("dag_run", "callback_url", pw.TextField(null=True)),
        migrator.add_column("dag_run", "trigger", pw.TextField(null=True)),
        migrator.add_column("function_version", "secrets", pw.TextField(default="[]")),
    )


def _v6_audit() -> None:
    db.create_tables([AuditEvent])


def _v7_environments() -> None:
    migrator = schema.SchemaMigrator.from_database(db.obj)
    version = "function_version"
    schema.migrate(
        migrator.add_column(version, "requirements", pw.TextField(default="[]")),
        migrator.add_column(version, "lock", pw.TextField(default="")),
        migrator.add_column(version, "lock_sha256", pw.CharField(max_length=64, default="")),
        migrator.add_column(version, "build_log", pw.TextField(default="")),
        migrator.add_column(version, "build_s", pw.FloatField(null=True)),
        migrator.add_column(version, "isolation", pw.CharField(max_length=10, default="warm")),
    )


def _v8_ids_never_reused() -> None:
    """SQLite: every table's key becomes AUTOINCREMENT (models.NeverReusedId), so a deleted
    run's id is never handed out again. SQLite cannot alter a key: each table is rebuilt
    from its own CREATE statement, rows and indexes kept. Postgres' sequences never reuse."""
    if is_postgres():
        return
    for model in ALL_MODELS:
        if isinstance(model._meta.primary_key, NeverReusedId):
            _rebuild_with_autoincrement(model._meta.table_name)
    problems = db.execute_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")


_SQLITE_KEY = '"id" INTEGER NOT NULL PRIMARY KEY'


def _rebuild_with_autoincrement(table: str) -> None:
    (create,) = db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if "AUTOINCREMENT" in create:
        return
    if _SQLITE_KEY not in create:
        raise RuntimeError(f"table {table}: unexpected key in {create!r}")
    indexes = db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,),
    ).fetchall()
    rebuilt = f"{table}__rebuilt"
    create = create.replace(f'"{table}"', f'"{rebuilt}"', 1)
    db.execute_sql(create.replace(_SQLITE_KEY, _SQLITE_KEY + " AUTOINCREMENT", 1))
    db.execute_sql(f'INSERT INTO "{rebuilt}" SELECT * FROM "{table}"')
    db.execute_sql(f'DROP TABLE "{table}"')  # foreign keys are off (migrate): no cascade
    db.execute_sql(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
    for (statement,) in indexes:
        db.execute_sql(statement)


def _v9_callback_deliveries() -> None:
    """A callback's delivery kept on its run, so the clock resends one whose message the
    queue lost."""
    migrator = schema.SchemaMigrator.from_database(db.obj)
    schema.migrate(
        migrator.add_column("dag_run", "callback_state", pw.CharField(max_length=20, null=True)),
        migrator.add_column("dag_run", "callback_attempt", pw.IntegerField(default=0)),
        migrator.add_column("dag_run", "callback_due_at", pw.DateTimeField(null=True)),
        migrator.add_index("dag_run", ("callback_state", "callback_due_at")),
    )


def _v10_ui_sessions() -> None:
    db.create_tables([UiSession])


def _v11_history_reads() -> None:
    """Reads that a long history must not slow down: the try-duration histogram of /metrics
    becomes counters (TryDuration), which start from the tries kept; and a page of a DAG's
    runs in one state is found by index."""
    db.create_tables([TryDuration])
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS dag_run_dag_id_state_id ON dag_run (dag_id, state, id)"
    )
    _count_kept_tries()


def _count_kept_tries() -> None:
    """Count every try kept in TryDuration (in shard 0): one pass over task_try."""
    seconds = pw.SQL(
        "EXTRACT(EPOCH FROM (finished_at - started_at))"
        if is_postgres()
        else "(julianday(finished_at) - julianday(started_at)) * 86400"
    )
    bucket = pw.Case(None, [(seconds <= b, str(b)) for b in TRY_DURATION_BOUNDS], SLOWEST_BUCKET)
    kept = (
        TaskTry.select(bucket, pw.Value(0), pw.fn.COUNT(pw.SQL("*")), pw.fn.SUM(seconds))
        .where(TaskTry.started_at.is_null(False))
        .group_by(pw.SQL("1"))
    )
    columns = [TryDuration.le, TryDuration.shard, TryDuration.tries, TryDuration.seconds]
    TryDuration.insert_from(kept, columns).execute()


# (version, callable) in ascending order; each brings the schema from version-1 to version.
STEPS: list = [
    (2, _v2_scheduling),
    (3, _v3_slots),
    (4, _v4_metrics),
    (5, _v5_webhooks_and_secrets),
    (6, _v6_audit),
    (7, _v7_environments),
    (8, _v8_ids_never_reused),
    (9, _v9_callback_deliveries),
    (10, _v10_ui_sessions),
    (11, _v11_history_reads),
]
LATEST = 1 + len(STEPS)  # the schema version this code needs


def current_version() -> int | None:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return None
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else None


def migrate() -> tuple[int | None, int]:
    """Create or upgrade the schema; returns (version before, version after)."""
    with _foreign_keys_off_on_sqlite(), db.atomic():
        if is_postgres():
            locks.take(locks.MIGRATION)
        before = current_version()
        if before is None:
            _create_baseline()
        else:
            for version, step in STEPS:
                if version > before:
                    log.info("migrating schema to version %d", version)
                    step()
        SchemaVersion.delete().execute()
        SchemaVersion.create(version=LATEST)
    return before, LATEST


@contextlib.contextmanager
def _foreign_keys_off_on_sqlite():
    """SQLite rebuilds a table by dropping it, which would cascade to its children unless
    foreign keys are off; the pragma is ignored inside a transaction, so it is set around
    the migration's (steps check ``PRAGMA foreign_key_check`` themselves)."""
    if is_postgres():
        yield
        return
    db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")


def _create_baseline() -> None:
    db.create_tables(ALL_MODELS)
    for statement in EXTRA_DDL:
        db.execute_sql(statement)
