"""DAGs: store validated specs as immutable versions; pause; delete."""

import hashlib
import json
from datetime import datetime, timedelta

import peewee

from app.domain import schedule
from app.domain.dagspec import DagSpec, SpecInvalid, parse_dag_spec
from app.domain.errors import Conflict, Invalid, NotFound, Unauthorized
from app.domain.timeutil import utcnow
from app.engine import crypto, dispatch, functions, pools, webhooks
from app.store.db import Compiled, Slot, db
from app.store.models import Dag, DagRun, DagVersion


def parse(payload, dag_id: str | None = None) -> DagSpec:
    try:
        spec = parse_dag_spec(payload, functions.names(), dag_id=dag_id)
    except SpecInvalid as exc:
        raise Invalid(exc.errors) from None
    known = pools.names()
    unknown = [
        {"field": f"tasks[{i}].pool", "message": f"unknown pool '{task.pool}'"}
        for i, task in enumerate(spec.tasks)
        if task.pool is not None and task.pool not in known
    ]
    if unknown:
        raise Invalid(unknown)
    return spec


def create(payload) -> tuple[Dag, DagVersion]:
    spec = parse(payload)
    try:
        with db.atomic():
            dag = Dag.create(dag_id=spec.dag_id)
            rotate_webhook_secret(dag)
            version = _add_version(dag, spec)
            refresh_next_run(dag)
            return dag, version
    except peewee.IntegrityError:
        message = f"DAG {spec.dag_id!r} exists; PUT /api/v1/dags/{spec.dag_id} to change it"
        raise Conflict(message) from None


def put(dag_id: str, payload) -> tuple[Dag, DagVersion, bool]:
    """Create the DAG or add a version; returns (dag, version, changed). An identical spec
    returns the current version unchanged."""
    spec = parse(payload, dag_id=dag_id)
    with db.atomic():
        dag, created = Dag.get_or_create(dag_id=dag_id)
        if created:
            rotate_webhook_secret(dag)
        current = current_version(dag)
        if current is not None and current.sha256 == _digest(spec):
            return dag, current, False
        version = _add_version(dag, spec)
        refresh_next_run(dag)
        return dag, version, True


def _add_version(dag: Dag, spec: DagSpec) -> DagVersion:
    current = current_version(dag)
    number = (current.version if current else 0) + 1
    dag.updated_at = utcnow()
    dag.save()
    spec_dict = spec.to_dict()
    return DagVersion.create(dag=dag, version=number, spec=spec_dict, sha256=_digest(spec))


def _digest(spec: DagSpec) -> str:
    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()


def rotate_webhook_secret(dag: Dag) -> str:
    """A new webhook secret for the DAG, stored encrypted; the plain value is returned here
    (and kept on ``dag.revealed_webhook_secret`` for the response that created the DAG) and
    never shown again."""
    secret = webhooks.new_secret()
    Dag.update(webhook_secret=crypto.encrypt(secret)).where(Dag.id == dag.id).execute()
    dag.revealed_webhook_secret = secret
    return secret


def webhook_secret(dag: Dag) -> str:
    """The DAG's webhook secret in clear; Unauthorized if it has none (a DAG created before
    webhooks existed has none until an admin rotates one)."""
    if dag.webhook_secret is None:
        raise Unauthorized(
            f"DAG {dag.dag_id!r} has no webhook secret: an admin makes one with"
            f" POST /api/v1/dags/{dag.dag_id}/webhook-secret"
        )
    return crypto.decrypt(dag.webhook_secret)


def get(dag_id: str) -> Dag:
    dag = _BY_DAG_ID.first(dag_id=dag_id)
    if dag is None:
        raise NotFound(f"no DAG {dag_id!r}")
    return dag


def current_version(dag: Dag) -> DagVersion | None:
    return _CURRENT_VERSION.first(dag_pk=dag.id)


# Asked on every trigger and webhook delivery: compiled (app/store/db.py).
_BY_DAG_ID = Compiled(lambda: Dag.select().where(Dag.dag_id == Slot("dag_id")).limit(1))
_CURRENT_VERSION = Compiled(
    lambda: (
        DagVersion.select()
        .where(DagVersion.dag == Slot("dag_pk"))
        .order_by(DagVersion.version.desc())
        .limit(1)
    )
)


def current_versions():
    """(dag, current version) for every DAG, in two queries."""
    latest = (
        DagVersion.select(DagVersion.dag, peewee.fn.MAX(DagVersion.version).alias("latest"))
        .group_by(DagVersion.dag)
        .alias("latest")
    )
    query = (
        DagVersion.select(DagVersion, Dag)
        .join(Dag)
        .switch(DagVersion)
        .join(
            latest,
            on=(DagVersion.dag == latest.c.dag_id) & (DagVersion.version == latest.c.latest),
        )
        .order_by(Dag.dag_id)
    )
    return [(version.dag, version) for version in query]


def set_paused(dag_id: str, payload) -> Dag:
    if not isinstance(payload, dict) or set(payload) != {"paused"}:
        raise Invalid([{"field": "", "message": 'the body must be {"paused": true|false}'}])
    if not isinstance(payload["paused"], bool):
        raise Invalid([{"field": "paused", "message": "must be true or false"}])
    dag = get(dag_id)
    with db.atomic():
        Dag.update(paused=payload["paused"], updated_at=utcnow()).where(Dag.id == dag.id).execute()
        dag.paused = payload["paused"]
        if not dag.paused:
            refresh_next_run(dag)  # with catchup off, the next tick creates only the latest run
            dispatch.start_queued_runs(dag.id)
    return get(dag_id)


def spec_of(dag: Dag) -> DagSpec:
    version = DagVersion.select().where(DagVersion.dag == dag).order_by(DagVersion.version.desc())
    return parse_stored(version.first().spec)


def parse_stored(data: dict) -> DagSpec:
    """A stored DAG version's spec, parsed (it was valid when it was stored)."""
    return parse_dag_spec(data, _functions_named_in(data))


def _functions_named_in(data: dict) -> set[str]:
    """A stored spec was validated when it was deployed: trust the functions it names."""
    callbacks = {name for key in ("on_success", "on_failure") if (name := data.get(key))}
    return {t["function"] for t in data["tasks"]} | callbacks


def _create_owed_run(dag: Dag, due: schedule.Due) -> bool:
    """The scheduled run for ``due``; True if it exists now (a clock may have made it first:
    the unique index on (dag, logical_date) makes it exactly once). False if a function
    version the DAG names is missing: the DAG stays due and the clock logs why each tick."""
    version = current_version(dag)
    assert version is not None  # a DAG is created with its first version
    interval = (due.data_interval_start, due.data_interval_end)
    try:
        with db.atomic():
            dispatch.create_dag_run(dag, version, "scheduled", due.logical_date, interval=interval)
    except peewee.IntegrityError:
        pass
    except Invalid:
        return False
    return True


def last_scheduled(dag: Dag) -> datetime | None:
    return (
        DagRun.select(peewee.fn.MAX(DagRun.logical_date))
        .where((DagRun.dag == dag) & (DagRun.run_type == "scheduled"))
        .scalar()
    )


def refresh_next_run(dag: Dag) -> datetime | None:
    """Set the DAG's next_run_at, when a DAG is created, changed or unpaused: the first due
    time after its last scheduled run, or from its start. Without catchup, the one run owed
    now (the latest due time, as Airflow makes it) is created here, as the clock's next tick
    would, so next_run_at is never in the past; with catchup, the owed runs are the clock's
    to create (up to 1000 a tick) and next_run_at is the oldest of them until it has."""
    spec = spec_of(dag)
    last = last_scheduled(dag)
    if not spec.catchup and not dag.paused:
        for due in schedule.due_runs(spec, last, utcnow(), dag.created_at):
            if _create_owed_run(dag, due):
                last = due.logical_date
    if last is None:
        start = spec.start_date.replace(tzinfo=None) if spec.start_date else dag.created_at
        once = start if spec.schedule == "@once" else None  # an @once DAG runs at its start
        dag.next_run_at = schedule.next_fire_after(spec, start - timedelta(microseconds=1)) or once
    else:
        dag.next_run_at = schedule.next_fire_after(spec, last)
    Dag.update(next_run_at=dag.next_run_at).where(Dag.id == dag.id).execute()
    return dag.next_run_at
