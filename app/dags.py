"""DAGs: store validated specs as immutable versions; pause; delete."""

import hashlib
import json

import peewee

from app import functions
from app.dagspec import DagSpec, SpecInvalid, parse_dag_spec
from app.db import db
from app.errors import Conflict, Invalid, NotFound
from app.models import Dag, DagVersion
from app.timeutil import utcnow


def parse(payload, dag_id: str | None = None) -> DagSpec:
    try:
        return parse_dag_spec(payload, functions.names(), dag_id=dag_id)
    except SpecInvalid as exc:
        raise Invalid(exc.errors) from None


def create(payload) -> tuple[Dag, DagVersion]:
    spec = parse(payload)
    try:
        with db.atomic():
            dag = Dag.create(dag_id=spec.dag_id)
            return dag, _add_version(dag, spec)
    except peewee.IntegrityError:
        message = f"DAG {spec.dag_id!r} exists; PUT /api/v1/dags/{spec.dag_id} to change it"
        raise Conflict(message) from None


def put(dag_id: str, payload) -> tuple[Dag, DagVersion, bool]:
    """Create the DAG or add a version; returns (dag, version, changed). An identical spec
    returns the current version unchanged."""
    spec = parse(payload, dag_id=dag_id)
    with db.atomic():
        dag, _ = Dag.get_or_create(dag_id=dag_id)
        current = current_version(dag)
        if current is not None and current.sha256 == _digest(spec):
            return dag, current, False
        return dag, _add_version(dag, spec), True


def _add_version(dag: Dag, spec: DagSpec) -> DagVersion:
    current = current_version(dag)
    number = (current.version if current else 0) + 1
    dag.updated_at = utcnow()
    dag.save()
    spec_dict = spec.to_dict()
    return DagVersion.create(dag=dag, version=number, spec=spec_dict, sha256=_digest(spec))


def _digest(spec: DagSpec) -> str:
    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()


def get(dag_id: str) -> Dag:
    dag = Dag.get_or_none(Dag.dag_id == dag_id)
    if dag is None:
        raise NotFound(f"no DAG {dag_id!r}")
    return dag


def current_version(dag: Dag) -> DagVersion | None:
    query = DagVersion.select().where(DagVersion.dag == dag)
    return query.order_by(DagVersion.version.desc()).first()


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
    Dag.update(paused=payload["paused"], updated_at=utcnow()).where(Dag.id == dag.id).execute()
    return get(dag_id)


def delete(dag_id: str) -> None:
    """Delete the DAG with its versions, runs, task instances and logs."""
    dag = get(dag_id)
    with db.atomic():
        dag.delete_instance(recursive=False)
