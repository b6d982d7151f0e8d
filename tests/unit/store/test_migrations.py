"""Schema creation: idempotent, safe from two processes at once, with its extra constraints."""

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import peewee
import pytest

from app.store import db, migrations
from app.store.models import (
    ALL_MODELS,
    AuditEvent,
    Dag,
    DagRun,
    Function,
    FunctionVersion,
    Metric,
    NeverReusedId,
    Pool,
    SchemaVersion,
    Secret,
    TaskInstance,
    TaskLog,
    TaskTry,
)
from tests.conftest import POSTGRES_URL, require_postgres, reset_postgres

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TABLES = {model._meta.table_name for model in ALL_MODELS}
LOGICAL_DATE = datetime(2026, 1, 1, 3, 0)


def stamped_versions() -> list[int]:
    return [row.version for row in SchemaVersion.select()]


def test_migrate_creates_every_table_and_stamps_the_latest_version(backend):
    db.db.drop_tables(ALL_MODELS)
    assert not TABLES & set(db.db.get_tables())  # SQLite keeps its sqlite_sequence
    assert migrations.current_version() is None
    assert migrations.migrate() == (None, migrations.LATEST)
    assert TABLES <= set(db.db.get_tables())
    assert stamped_versions() == [migrations.LATEST]


def test_migrate_again_changes_nothing_and_keeps_data(backend):
    Function.create(name="kept")
    tables = set(db.db.get_tables())
    assert migrations.migrate() == (migrations.LATEST, migrations.LATEST)
    assert set(db.db.get_tables()) == tables
    assert stamped_versions() == [migrations.LATEST]
    assert [f.name for f in Function.select()] == ["kept"]


@pytest.mark.parametrize("backend_name", ["embedded", "postgres"])
def test_concurrent_migrations_both_succeed_and_stamp_once(backend_name, tmp_path):
    if backend_name == "postgres":
        require_postgres()
        reset_postgres(POSTGRES_URL)
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'brisa.db'}"
    env = {
        "PYTHONPATH": str(PROJECT_ROOT),
        "BRISA_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "x",
        "DATABASE_URL": url,
    }
    command = [sys.executable, "-m", "app", "migrate"]
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=60), p.returncode) for p in procs]
    assert [code for _, _, code in results] == [0, 0], results
    # Exactly one of them found the database empty.
    latest = f"schema at version {migrations.LATEST}"
    assert sorted(out.strip() for out, _, _ in results) == [latest, f"{latest} (was None)"]
    previous = db.db.obj
    db.bind(url)
    try:
        assert TABLES <= set(db.db.get_tables())
        assert stamped_versions() == [migrations.LATEST]
    finally:
        db.db.close()
        db.db.initialize(previous)


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_one_scheduled_run_per_dag_and_logical_date(backend, run_type):
    dag = Dag.create(dag_id="nightly")
    fields = dict(dag=dag, run_type=run_type, logical_date=LOGICAL_DATE, state="queued")
    DagRun.create(**fields)
    with pytest.raises(peewee.IntegrityError), db.db.atomic():
        DagRun.create(**fields)
    assert DagRun.select().count() == 1


def test_other_runs_may_share_a_logical_date(backend):
    nightly, hourly = Dag.create(dag_id="nightly"), Dag.create(dag_id="hourly")
    for dag, run_type in [
        (nightly, "scheduled"),
        (nightly, "manual"),
        (nightly, "manual"),
        (nightly, "webhook"),
        (hourly, "scheduled"),
    ]:
        DagRun.create(dag=dag, run_type=run_type, logical_date=LOGICAL_DATE, state="queued")
    assert DagRun.select().count() == 5


ADDED_SINCE_V1 = {  # columns the steps add (v2 scheduling, v3 slots, v5 webhooks, v9 callbacks)
    "dag": ["next_run_at", "webhook_secret"],
    "dag_run": [
        "data_interval_start",
        "data_interval_end",
        "timeout_at",
        "max_active_tasks",
        "callback_url",
        "trigger",
        "callback_state",
        "callback_attempt",
        "callback_due_at",
    ],
    "task_instance": ["retry_backoff", "max_retry_delay", "dag_pk", "pool", "parked"],
    "function_version": [
        "secrets",
        "requirements",
        "lock",
        "lock_sha256",
        "build_log",
        "build_s",
        "isolation",
    ],
}


def columns(table: str) -> set[str]:
    return {column.name for column in db.db.get_columns(table)}


def test_a_version_1_database_is_upgraded_in_place_keeping_its_data(backend):
    """Make the database look as version 1 left it, then migrate."""
    from playhouse import migrate as schema

    Function.create(name="kept")
    migrator = schema.SchemaMigrator.from_database(db.db.obj)
    for table, index in [
        ("dag", "dag_next_run_at"),
        ("task_instance", "task_instance_dag_pk_state"),
        ("task_instance", "task_instance_pool_state"),
        ("dag_run", "dag_run_callback_state_callback_due_at"),
    ]:
        schema.migrate(migrator.drop_index(table, index))
    for table, names in ADDED_SINCE_V1.items():
        schema.migrate(*(migrator.drop_column(table, name) for name in names))
    db.db.drop_tables([TaskTry, Pool, Metric, Secret, AuditEvent])
    SchemaVersion.update(version=1).execute()
    assert not columns("dag_run") & set(ADDED_SINCE_V1["dag_run"])

    assert migrations.migrate() == (1, migrations.LATEST)
    for table, names in ADDED_SINCE_V1.items():
        assert set(names) <= columns(table), table
    assert {"task_try", "pool", "metric", "secret", "audit_event"} <= set(db.db.get_tables())
    assert [f.name for f in Function.select()] == ["kept"]
    assert stamped_versions() == [migrations.LATEST]


KEYED_TABLES = [
    model._meta.table_name
    for model in ALL_MODELS
    if isinstance(model._meta.primary_key, NeverReusedId)
]


def _run_with_a_task(dag: Dag, task_id: str = "t") -> tuple[int, int]:
    function = Function.get_or_create(name="f")[0]
    version = FunctionVersion.get_or_none(function=function) or FunctionVersion.create(
        function=function,
        version=1,
        source="",
        sha256="",
        handler="handler",
        runtime="python",
        timeout=1,
        memory_mb=64,
        env={},
    )
    run = DagRun.create(dag=dag, run_type="manual", logical_date=LOGICAL_DATE, state="running")
    ti = TaskInstance.create(
        run=run, task_id=task_id, function_version=version, state="queued", timeout=1
    )
    TaskLog.create(task_instance=ti, try_number=1, seq=0, chunk="x")
    return run.id, ti.id


def test_a_deleted_runs_ids_are_never_handed_out_again(backend):
    """#15.1: SQLite gave a new run the id of a deleted DAG's last run (33 after 33, 34)."""
    slow = Dag.create(dag_id="slowdag")
    old = [_run_with_a_task(slow) for _ in range(2)]
    old_logs = [log.id for log in TaskLog.select()]
    slow.delete_instance()  # the database cascades, as the API's delete does
    assert DagRun.select().count() == 0
    new_run, new_ti = _run_with_a_task(Dag.create(dag_id="example_pipeline"))
    assert new_run > max(run for run, _ in old)
    assert new_ti > max(ti for _, ti in old)
    assert TaskLog.get(TaskLog.task_instance == new_ti).id > max(old_logs)


def test_every_key_is_never_reused_by_the_database(backend):
    if backend.name == "postgres":  # sequences: nextval never repeats
        return
    for table in KEYED_TABLES:
        (create,) = db.db.execute_sql(
            "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        assert "PRIMARY KEY AUTOINCREMENT" in create, table


def test_a_version_7_sqlite_database_gets_keys_never_reused_keeping_rows(backend, monkeypatch):
    """A database made before version 8 (plain INTEGER PRIMARY KEY) is rebuilt in place:
    rows, children and indexes kept; from then on a deleted id is never handed out again
    (one deleted before the upgrade is beyond knowing)."""
    if backend.name == "postgres":
        return
    monkeypatch.setattr(NeverReusedId, "ddl", peewee.AutoField.ddl)
    db.db.drop_tables(ALL_MODELS)
    migrations.migrate()
    monkeypatch.undo()
    dag = Dag.create(dag_id="slowdag")
    kept_run, kept_ti = _run_with_a_task(dag, "kept")
    last_run, last_ti = _run_with_a_task(dag, "last")
    _as_version_7()
    indexes_before = _index_names() + ["dag_run_callback_state_callback_due_at"]

    assert migrations.migrate() == (7, migrations.LATEST)
    assert _index_names() == sorted(indexes_before)
    tasks = [(ti.id, ti.run_id) for ti in TaskInstance.select().order_by(TaskInstance.id)]
    assert tasks == [(kept_ti, kept_run), (last_ti, last_run)]
    assert TaskLog.select().where(TaskLog.task_instance == kept_ti).count() == 1
    DagRun.delete_by_id(last_run)
    assert TaskInstance.get_or_none(id=last_ti) is None  # the cascade still holds
    new_run, _ = _run_with_a_task(dag, "new")
    assert new_run > last_run
    assert db.db.execute_sql("PRAGMA foreign_keys").fetchone() == (1,)
    with pytest.raises(peewee.IntegrityError), db.db.atomic():
        DagRun.create(dag=12345, run_type="manual", logical_date=LOGICAL_DATE, state="queued")


def _as_version_7() -> None:
    """Drop what the steps after version 7 (except 8's keys) add, and stamp 7."""
    from playhouse import migrate as schema

    migrator = schema.SchemaMigrator.from_database(db.db.obj)
    schema.migrate(migrator.drop_index("dag_run", "dag_run_callback_state_callback_due_at"))
    for column in ("callback_state", "callback_attempt", "callback_due_at"):
        schema.migrate(migrator.drop_column("dag_run", column))
    SchemaVersion.update(version=7).execute()


def _index_names() -> list[str]:
    rows = db.db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return sorted(name for (name,) in rows)
