"""Peewee models. Schema changes go through app/store/migrations.py, never create_tables alone."""

from __future__ import annotations  # the typing-only annotations below are never evaluated

import json
import re

import peewee as pw

from app.domain import strict_json
from app.domain.timeutil import utcnow
from app.store.db import db, is_postgres


class JSONField(pw.TextField):
    """JSON kept as text: the same column type on Postgres and SQLite."""

    def db_value(self, value):
        return None if value is None else strict_json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` as every backend stores it: NUL (which Postgres text refuses) and unpaired
    surrogates (which UTF-8 cannot encode) become U+FFFD, the replacement character."""
    return _UNSTORABLE.sub("\ufffd", text)


class OutsideText(pw.TextField):
    """Text written by what Brisa does not control (a function's output and errors, a
    runtime's, the resolver's build log), made storable on both backends (``storable``)."""

    def db_value(self, value):
        return None if value is None else storable(str(value))


class NeverReusedId(pw.AutoField):
    """An id handed out once: a deleted row's id never comes back for a new row (an old
    status URL, callback or a stale worker's outcome would reach the new row). Postgres
    sequences never hand a number out twice; SQLite reuses the largest id after a delete
    unless the key is ``AUTOINCREMENT``."""

    def ddl(self, ctx):
        node = super().ddl(ctx)
        return node if is_postgres() else pw.NodeList((node, pw.SQL("AUTOINCREMENT")))


class BaseModel(pw.Model):
    # Every model's key, unless it declares its own (Metric).
    id = NeverReusedId()

    class Meta:
        database = db
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = pw.IntegerField()


class Function(BaseModel):
    name = pw.CharField(max_length=100, unique=True)
    created_at = pw.DateTimeField(default=utcnow)

    versions: pw.ModelSelect[FunctionVersion]  # typing only: the backref peewee adds


class FunctionVersion(BaseModel):
    """Immutable: a deploy with other source or settings makes version n+1."""

    function = pw.ForeignKeyField(Function, backref="versions", on_delete="CASCADE")
    function_id: pw.IntegerField[int]  # typing only: the accessor peewee adds for the key
    version = pw.IntegerField()
    source = pw.TextField()
    sha256 = pw.CharField(max_length=64)
    handler = pw.CharField(max_length=100)
    runtime = pw.CharField(max_length=20)
    timeout = pw.FloatField()
    memory_mb = pw.IntegerField()
    env = JSONField()
    secrets = JSONField(default=list)  # names of the secrets it may read (context.secrets)
    # Its packages: the deploy's requirements (PEP 508, canonical; the source's PEP 723
    # dependencies are in the source), resolved at deploy to a lock with hashes, and the
    # environment built from that lock (app/engine/environments.py).
    requirements = JSONField(default=list)
    lock = pw.TextField(default="")  # uv's requirements.txt with hashes; "" : no packages
    lock_sha256 = pw.CharField(max_length=64, default="")
    build_log = OutsideText(default="")
    build_s = pw.FloatField(null=True)  # seconds the environment took to build at deploy
    isolation = pw.CharField(max_length=10, default="warm")  # warm executors, or fresh
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("function", "version"), True),)


class Dag(BaseModel):
    dag_id = pw.CharField(max_length=100, unique=True)
    paused = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    next_run_at = pw.DateTimeField(null=True, index=True)  # the clock looks only at due DAGs
    webhook_secret = pw.TextField(null=True)  # encrypted (app/engine/crypto.py)

    # Not a column: the secret in clear, set only on the Dag that app/engine/dags.py created
    # it for, so the response to that request can show it once.
    revealed_webhook_secret: str | None = None

    # Typing only: the backrefs peewee adds.
    versions: pw.ModelSelect[DagVersion]
    runs: pw.ModelSelect[DagRun]


class DagVersion(BaseModel):
    """Immutable JSON spec; a run pins the version it was created from."""

    dag = pw.ForeignKeyField(Dag, backref="versions", on_delete="CASCADE")
    dag_id: pw.IntegerField[int]  # typing only: the accessor peewee adds for the key
    version = pw.IntegerField()
    spec = JSONField()
    sha256 = pw.CharField(max_length=64)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("dag", "version"), True),)


class Pool(BaseModel):
    """A named number of slots: at most that many task instances in the pool run at once,
    across all DAGs."""

    name = pw.CharField(max_length=100, unique=True)
    slots = pw.IntegerField()
    description = pw.TextField(default="")


class DagRun(BaseModel):
    """A run of a DAG version, or of one function (``invoke``: dag is null)."""

    dag = pw.ForeignKeyField(Dag, null=True, backref="runs", on_delete="CASCADE")
    dag_version = pw.ForeignKeyField(DagVersion, null=True, on_delete="CASCADE")
    function = pw.ForeignKeyField(Function, null=True, on_delete="CASCADE")
    # Typing only: the accessors peewee adds for the foreign keys (the referenced ids), and
    # the backref.
    dag_id: pw.IntegerField[int | None]
    dag_version_id: pw.IntegerField[int | None]
    function_id: pw.IntegerField[int | None]
    task_instances: pw.ModelSelect[TaskInstance]
    run_type = pw.CharField(max_length=20)  # manual | scheduled | webhook | invoke | backfill
    logical_date = pw.DateTimeField()
    conf = JSONField(null=True)
    state = pw.CharField(max_length=20)
    idempotency_key = pw.CharField(max_length=200, null=True, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)
    data_interval_start = pw.DateTimeField(null=True)
    data_interval_end = pw.DateTimeField(null=True)
    timeout_at = pw.DateTimeField(null=True)  # dagrun_timeout: failed if still going then
    max_active_tasks = pw.IntegerField(null=True)  # from the spec; null: no limit (invoke)
    callback_url = pw.TextField(null=True)  # an async invoke's receiver of the result
    # Its delivery (app/engine/callbacks.py): null until the run ends, then pending, and
    # delivered, failed (attempts spent) or refused (an address not allowed).
    callback_state = pw.CharField(max_length=20, null=True)
    callback_attempt = pw.IntegerField(default=0)  # the attempt due (pending) or made last
    callback_due_at = pw.DateTimeField(null=True)  # when the pending attempt is due
    trigger = JSONField(null=True)  # how it started, e.g. a webhook's event and delivery id

    class Meta:
        indexes = (
            (("dag", "id"), False),
            (("dag", "state", "id"), False),  # a page of a DAG's runs in one state
            (("state",), False),
            (("callback_state", "callback_due_at"), False),
        )


class TaskInstance(BaseModel):
    """One task of one run. Self-contained: the worker needs no spec to run it or its successors."""

    run = pw.ForeignKeyField(DagRun, backref="task_instances", on_delete="CASCADE")
    run_id: pw.IntegerField[int]  # typing only: the accessor peewee adds for the key
    dag_pk = pw.IntegerField(null=True)  # the run's Dag.id, copied to count a DAG's slots
    task_id = pw.CharField(max_length=100)
    function_version = pw.ForeignKeyField(FunctionVersion, on_delete="CASCADE")
    function_version_id: pw.IntegerField[int]  # typing only, as run_id
    # Typing only: the backrefs peewee adds.
    tries: pw.ModelSelect[TaskTry]
    logs: pw.ModelSelect[TaskLog]
    state = pw.CharField(max_length=20)
    try_number = pw.IntegerField(default=0)  # the try running or last run; 1 on the first
    max_tries = pw.IntegerField(default=1)
    retry_delay = pw.FloatField(default=10)
    retry_backoff = pw.BooleanField(default=False)
    max_retry_delay = pw.FloatField(default=3600)
    timeout = pw.FloatField()
    args = JSONField(default=dict)
    upstream = JSONField(default=list)
    downstream = JSONField(default=list)
    trigger_rule = pw.CharField(max_length=40, default="all_success")
    pool = pw.CharField(max_length=100, null=True)
    parked = pw.BooleanField(default=False)  # queued, but its DAG or pool had no free slot
    queued_at = pw.DateTimeField(null=True)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField(null=True)
    next_try_at = pw.DateTimeField(null=True)
    heartbeat_at = pw.DateTimeField(null=True)
    worker = pw.CharField(max_length=200, null=True)
    result = JSONField(null=True)
    error = OutsideText(null=True)

    class Meta:
        indexes = (
            (("run", "task_id"), True),
            (("state", "queued_at"), False),
            (("dag_pk", "state"), False),
            (("pool", "state"), False),
        )


class TaskTry(BaseModel):
    """One finished try of a task instance: its outcome, times and error, kept when the task
    instance moves on to the next try."""

    task_instance = pw.ForeignKeyField(TaskInstance, backref="tries", on_delete="CASCADE")
    task_instance_id: pw.IntegerField[int]  # typing only: the accessor peewee adds for the key
    try_number = pw.IntegerField()
    state = pw.CharField(max_length=20)
    started_at = pw.DateTimeField(null=True)
    finished_at = pw.DateTimeField()
    worker = pw.CharField(max_length=200, null=True)
    error = OutsideText(null=True)

    class Meta:
        indexes = ((("task_instance", "try_number"), True),)


class TaskLog(BaseModel):
    task_instance = pw.ForeignKeyField(TaskInstance, backref="logs", on_delete="CASCADE")
    try_number = pw.IntegerField()
    seq = pw.IntegerField()
    chunk = OutsideText()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("task_instance", "try_number", "seq"), True),)


class Secret(BaseModel):
    """A named value, encrypted at rest; a connection is a secret whose value is a URL."""

    name = pw.CharField(max_length=100, unique=True)
    value = pw.TextField()  # encrypted (app/engine/crypto.py)
    created_at = pw.DateTimeField(default=utcnow)


class Metric(BaseModel):
    """Counters and gauges that outlive a process (the clock's, the workers'), for /metrics."""

    name = pw.CharField(max_length=100, primary_key=True)
    value = pw.DoubleField(default=0)  # REAL would round Unix times to minutes


# The upper bounds, seconds, of the try-duration histogram's buckets (/metrics; TryDuration).
TRY_DURATION_BOUNDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
SLOWEST_BUCKET = "+Inf"  # the ``le`` of the tries slower than the last bound


class TryDuration(BaseModel):
    """The try-duration histogram of /metrics, as counters added to when a try ends (in the
    transaction that keeps the try), so a scrape never reads the history. One row per bucket
    and shard: ``le`` is the bucket's upper bound as Prometheus labels it (``str`` of a
    TRY_DURATION_BOUNDS bound, or SLOWEST_BUCKET), and a try is counted in its own bucket
    only (a scrape adds them up). Tries of different task instances add to different shards,
    so tries ending at once seldom wait for each other's row."""

    le = pw.CharField(max_length=10)
    shard = pw.SmallIntegerField()
    tries = pw.BigIntegerField(default=0)
    seconds = pw.DoubleField(default=0)  # their durations added up

    class Meta:
        primary_key = pw.CompositeKey("le", "shard")


class AuditEvent(BaseModel):
    """Who changed what, and when: every accepted change made through the API or the UI."""

    at = pw.DateTimeField(default=utcnow, index=True)
    actor = pw.CharField(max_length=200)  # "token 7 (ci)", "BRISA_ADMIN_TOKEN", "ui: token 7"
    action = pw.CharField(max_length=200)  # "POST /api/v1/dags/<dag_id>/runs"
    target = pw.CharField(max_length=500)  # the request path
    status = pw.IntegerField()


class ApiToken(BaseModel):
    """Only the SHA-256 of a token is stored; the token itself is shown once."""

    name = pw.CharField(max_length=100, default="")
    role = pw.CharField(max_length=20)
    token_hash = pw.CharField(max_length=64, unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)


class UiSession(BaseModel):
    """A signed-in web UI session, kept server-side so that signing out ends it for every
    copy of its cookie. Only the SHA-256 of the session id (in the cookie) is stored."""

    sid_hash = pw.CharField(max_length=64, unique=True)
    started_at = pw.DateTimeField(default=utcnow, index=True)
    ended_at = pw.DateTimeField(null=True)


ALL_MODELS = [
    SchemaVersion,
    Function,
    FunctionVersion,
    Dag,
    DagVersion,
    Pool,
    DagRun,
    TaskInstance,
    TaskTry,
    TaskLog,
    Secret,
    Metric,
    AuditEvent,
    ApiToken,
    UiSession,
    TryDuration,
]
