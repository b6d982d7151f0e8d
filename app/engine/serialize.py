"""Models to JSON-ready dicts for the API (and the UI)."""

import hashlib

from app.domain.timeutil import isoformat
from app.store.models import (
    Dag,
    DagRun,
    DagVersion,
    Function,
    FunctionVersion,
    TaskInstance,
    TaskTry,
)


def function_version(version: FunctionVersion, source: bool = False) -> dict:
    data = {
        "name": version.function.name,
        "version": version.version,
        "sha256": version.sha256,
        # the source alone: a client tells whether its file differs without fetching it
        "source_sha256": hashlib.sha256(version.source.encode()).hexdigest(),
        "handler": version.handler,
        "runtime": version.runtime,
        "timeout": version.timeout,
        "memory_mb": version.memory_mb,
        "env": sorted(version.env),  # names only: values may be secrets
        "secrets": version.secrets,  # the names of the secrets it may read
        "requirements": version.requirements,
        "packages": pinned_packages(version.lock),
        "lock_sha256": version.lock_sha256,
        "isolation": version.isolation,
        "build_s": version.build_s,
        "created_at": isoformat(version.created_at),
    }
    if source:
        data["source"] = version.source
        data["lock"] = version.lock
        data["build_log"] = version.build_log
    return data


def pinned_packages(lock: str) -> list[str]:
    """``name==version`` of every package a lock pins, in its order."""
    return [
        line.split()[0].rstrip("\\")
        for line in lock.splitlines()
        if line and not line[0].isspace() and not line.startswith(("#", "-"))
    ]


def function(fn: Function, versions: list[FunctionVersion]) -> dict:
    return {
        "name": fn.name,
        "created_at": isoformat(fn.created_at),
        "latest_version": versions[0].version if versions else None,
        "versions": [function_version(v) for v in versions],
    }


def dag(dag_row: Dag, version: DagVersion, last_run: DagRun | None = None) -> dict:
    return {
        "dag_id": dag_row.dag_id,
        "paused": dag_row.paused,
        "version": version.version,
        "spec": version.spec,
        "created_at": isoformat(dag_row.created_at),
        "updated_at": isoformat(dag_row.updated_at),
        "last_run": run(last_run) if last_run else None,
        "next_run_at": None if dag_row.paused else isoformat(dag_row.next_run_at),
    }


def run(run_row: DagRun, tis: list[TaskInstance] | None = None) -> dict:
    # Each is None, without a query, when its key is null: an invoke has no DAG, a DAG run
    # no function.
    dag_row, version, fn = run_row.dag, run_row.dag_version, run_row.function
    data = {
        "run_id": run_row.id,
        "dag_id": dag_row.dag_id if dag_row is not None else None,
        "dag_version": version.version if version is not None else None,
        "function": fn.name if fn is not None else None,
        "run_type": run_row.run_type,
        "state": run_row.state,
        "logical_date": isoformat(run_row.logical_date),
        "data_interval_start": isoformat(run_row.data_interval_start),
        "data_interval_end": isoformat(run_row.data_interval_end),
        "conf": run_row.conf,
        "created_at": isoformat(run_row.created_at),
        "started_at": isoformat(run_row.started_at),
        "finished_at": isoformat(run_row.finished_at),
        "url": f"/api/v1/runs/{run_row.id}",
    }
    if tis is not None:
        data["tasks"] = [task_instance(ti) for ti in tis]
    return data


def task_instance(ti: TaskInstance) -> dict:
    duration = None
    if ti.started_at and ti.finished_at:
        duration = round((ti.finished_at - ti.started_at).total_seconds(), 3)
    return {
        "task_id": ti.task_id,
        "state": ti.state,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "function": ti.function_version.function.name,
        "function_version": ti.function_version.version,
        "upstream": ti.upstream,
        "trigger_rule": ti.trigger_rule,
        "pool": ti.pool,
        "queued_at": isoformat(ti.queued_at),
        "started_at": isoformat(ti.started_at),
        "finished_at": isoformat(ti.finished_at),
        "duration": duration,
        "next_try_at": isoformat(ti.next_try_at),
        "worker": ti.worker,
        "result": ti.result,
        "error": ti.error,
    }


def task_try(row: TaskTry) -> dict:
    return {
        "try_number": row.try_number,
        "state": row.state,
        "started_at": isoformat(row.started_at),
        "finished_at": isoformat(row.finished_at),
        "worker": row.worker,
        "error": row.error,
    }
