"""The worker's side of a try: claim it, run it in the sandbox, record what happened, then let
dispatch queue the successors. Served by the worker process (app/worker/consumer.py)."""

import atexit
import dataclasses
import json
import logging
import os
import socket
import time

from app.config import current
from app.domain.outcomes import STOPPED, Outcome
from app.domain.states import TaskState
from app.domain.timeutil import isoformat, utcnow
from app.engine import environments, metrics, outcomes, slots
from app.engine import secret_store as secrets
from app.sandbox import executors, supervisor
from app.sandbox.job import Job
from app.store import transitions
from app.store.db import (
    DB_ERRORS,
    Compiled,
    CompiledIn,
    Slot,
    cache_of,
    db,
    discard_connection,
    ensure_bound,
    retrying,
)
from app.store.models import Dag, DagRun, Function, FunctionVersion, TaskInstance, TaskLog

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
FLUSH_BYTES = 64 * 1024  # write the buffered log early when it grows past this


def run_try(ti_id: int, try_number: int) -> None:
    settings = current()
    with db.connection_context():
        ti = load_task_instance(ti_id)
        if ti is None:  # deleted meanwhile: nothing to run
            log.info("task instance %s try %s dropped: it no longer exists", ti_id, try_number)
            metrics.add("messages_dropped_total")
            return
        gate = slots.Gate(ti.dag_pk, ti.run.max_active_tasks, ti.pool)
        now = utcnow()
        claimed = slots.claim(gate, ti_id, try_number, WORKER_NAME, now)
        if claimed != slots.CLAIMED:
            log.info("task instance %s try %s %s", ti_id, try_number, claimed)
            if claimed == slots.DROPPED:
                metrics.add("messages_dropped_total")
            return
        ti.state, ti.started_at, ti.worker = str(TaskState.RUNNING), now, WORKER_NAME
        try:
            job = build_job(ti, settings)
        except DB_ERRORS as exc:
            # Claimed, but the database went away before the function could start: that is
            # no fault of the function, so the try goes back without spending a retry.
            log.warning("task instance %s try %s handed back: %s", ti_id, try_number, exc)
            discard_connection()
            retrying(lambda: _give_back_db_down(ti_id, try_number), settings.db_retry_s)
            return
        except LookupError as exc:  # a secret the function lists does not exist
            job, failure = None, Outcome(False, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - Brisa's own fault must still end the try
            log.exception("task instance %s try %s could not start", ti_id, try_number)
            job, failure = (
                None,
                Outcome(False, error=f"Brisa could not run the try: {exc!r}"),
            )
        observer = TryObserver(ti_id, try_number, settings.heartbeat_s, settings.log_cap_bytes)
        outcome = failure if job is None else _run(job, ti, try_number, observer)
        outcome = _masked(outcome, observer.secret_values)
        if not outcome.ok:
            ended = "" if outcome.error == STOPPED else "failed: "
            observer.output(f"\n[brisa] try {try_number} {ended}{outcome.error}\n")
        record(ti, try_number, outcome, observer, settings.db_retry_s)
        retrying(lambda: slots.wake(gate), settings.db_retry_s)


def record(ti: TaskInstance, try_number: int, outcome: Outcome, observer, db_retry_s: float):
    """Keep the try's log, then its outcome. Both are kept through a database outage (up to
    ``db_retry_s``): losing the outcome would make the clock run the function again. Any
    other error recording them fails the try at once with the real message, without a retry
    (the same error would end the retry too): nothing leaves a try running."""
    try:
        retrying(observer.flush, db_retry_s)
    except DB_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - the log is lost, the outcome must not be
        log.exception("task instance %s try %s: its log could not be kept", ti.id, try_number)
        observer.buffer, observer.buffered = [], 0
        outcome = Outcome(False, error=f"Brisa could not keep the try's log: {exc!r}"[:500])
    try:
        retrying(lambda: outcomes.record_outcome(ti, try_number, outcome), db_retry_s)
    except DB_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - Brisa's own fault must still end the try
        log.exception("task instance %s try %s: its outcome could not be kept", ti.id, try_number)
        error = f"Brisa could not record the try's outcome: {exc!r}"[:500]
        retrying(lambda: outcomes.record_failure(ti, try_number, error), db_retry_s)


def _run(job: Job, ti: TaskInstance, try_number: int, observer) -> Outcome:
    """A python function's try in a warm executor of its version's environment (built here
    first if this worker lacks it; a version without packages has the empty environment: the
    standard library only); the other runtimes' in a child forked from the fork server, in
    Brisa's own interpreter (they need its psycopg2 and nothing else)."""
    observer.secret_values = list(job.secrets.values())
    key = (ti.id, try_number)
    try:
        if job.runtime != "python":
            return supervisor.run(job, ti.timeout, observer, key=key)
        return _run_in_executor(job, function_version(ti.function_version_id), ti, observer)
    except environments.BuildError as exc:
        return Outcome(False, error=f"the function's environment could not be built: {exc}")
    except Exception as exc:  # noqa: BLE001 - Brisa's own fault must still end the try
        log.exception("task instance %s try %s could not run", ti.id, try_number)
        return Outcome(False, error=f"Brisa could not run the try: {exc!r}")


def _run_in_executor(job: Job, version: FunctionVersion, ti: TaskInstance, observer) -> Outcome:
    settings = current()
    built = environments.ensure_built(
        version.lock or "",
        env_dir=settings.environments_dir,
        cache_mb=settings.env_cache_mb,
        timeout_s=settings.build_timeout_s,
    )
    if built.built_now:
        observer.output(f"[brisa] environment built in {built.duration_s:.1f}s\n")
    spawn = executors.Spawn.of(job, str(built.python))
    fresh = version.isolation == "fresh"
    with environments.in_use(built.path):
        outcome, _cold = executor_pool().run(
            spawn, job, ti.timeout, observer, key=(ti.id, ti.try_number), fresh=fresh
        )
    return outcome


_pool: executors.Pool | None = None


def executor_pool() -> executors.Pool:
    """This worker process's warm executors, made on first use from the settings."""
    global _pool
    if _pool is None:
        settings = current()
        limits = executors.Limits(
            max_tries=settings.executor_max_tries,
            idle_s=settings.executor_idle_s,
            rss_growth_mb=settings.executor_rss_growth_mb,
            per_worker=settings.executors_per_worker,
        )
        _pool = executors.Pool(limits)
        # before multiprocessing's own exit hook (atexit runs last registered first), which
        # joins every child: a warm executor waits for its next job forever
        atexit.register(_pool.stop_all)
    return _pool


def _give_back_db_down(ti_id: int, try_number: int) -> None:
    outcomes.record_handed_back(ti_id, try_number, "the database was unreachable")


def give_back_on_shutdown(ti_id: int, try_number: int) -> None:
    """The consumer is stopping and this try did not finish within the grace period: give it
    back to the queue without spending a retry, then kill its child."""
    ensure_bound()
    with db.connection_context():
        if outcomes.record_handed_back(ti_id, try_number, "the worker shut down"):
            log.warning("task instance %s try %s handed back", ti_id, try_number)
    supervisor.kill((ti_id, try_number))
    executor_pool().kill((ti_id, try_number))


def _masked(outcome: Outcome, values: list[str]) -> Outcome:
    """The outcome with the try's secret values replaced by *** in its result and error."""
    if not values:
        return outcome
    result = json.loads(secrets.mask(json.dumps(outcome.result), values))
    error = secrets.mask(outcome.error, values) if outcome.error else outcome.error
    return dataclasses.replace(outcome, result=result, error=error)


def load_task_instance(ti_id: int) -> TaskInstance | None:
    """The task instance with its run, in one query: with the function version and the DAG's
    id (both immutable, so cached), everything a try needs but its upstream results and
    secrets."""
    return _LOAD.first(ti_id=ti_id)


def _load_query():
    ti, run = TaskInstance, DagRun
    return (
        TaskInstance.select(
            *(ti.id, ti.run, ti.dag_pk, ti.task_id, ti.function_version, ti.try_number),
            *(ti.max_tries, ti.retry_delay, ti.retry_backoff, ti.max_retry_delay, ti.timeout),
            *(ti.args, ti.upstream, ti.downstream, ti.pool),
            *(run.id, run.dag, run.conf, run.logical_date, run.data_interval_start),
            *(run.data_interval_end, run.run_type, run.trigger, run.max_active_tasks),
        )
        .join(DagRun)
        .where(TaskInstance.id == Slot("ti_id"))
        .limit(1)
    )


_LOAD = Compiled(_load_query)


def function_version(version_id: int) -> FunctionVersion:
    """A function version with its function (versions never change: cached per database)."""
    cache = cache_of("function_versions")
    if version_id not in cache:
        cache[version_id] = _VERSION.first(version_id=version_id)
    return cache[version_id]


_VERSION = Compiled(
    lambda: (
        FunctionVersion.select(FunctionVersion, Function)
        .join(Function)
        .where(FunctionVersion.id == Slot("version_id"))
        .limit(1)
    )
)


def dag_id_of(dag_pk: int) -> str:
    """A DAG's id (it never changes: cached per database)."""
    cache = cache_of("dag_ids")
    if dag_pk not in cache:
        cache[dag_pk] = _DAG_ID.first(dag_pk=dag_pk)[0]
    return cache[dag_pk]


_DAG_ID = Compiled(lambda: Dag.select(Dag.dag_id).where(Dag.id == Slot("dag_pk")).tuples())


def build_job(ti: TaskInstance, settings) -> Job:
    """What the child needs: the function's source and the event, all plain data."""
    version, run = function_version(ti.function_version_id), ti.run
    context = {
        "run_id": run.id,
        "dag_id": dag_id_of(run.dag_id) if run.dag_id else None,
        "task_id": ti.task_id,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "logical_date": isoformat(run.logical_date),
        "data_interval_start": isoformat(run.data_interval_start),
        "data_interval_end": isoformat(run.data_interval_end),
        "run_type": run.run_type,
    }
    event = {"conf": run.conf, "args": ti.args, "upstream": upstream_results(ti)}
    if run.trigger:
        event["trigger"] = run.trigger  # e.g. a webhook's event type and delivery id
    return Job(
        runtime=version.runtime,
        source=version.source,
        handler=version.handler,
        filename=f"<function {version.function.name} v{version.version}>",
        event=event,
        context=context,
        secrets=secrets.values_for(version.secrets) if version.secrets else {},
        env=version.env or {},
        memory_mb=version.memory_mb,
        cpu_s=ti.timeout,
        result_cap_bytes=settings.result_cap_bytes,
        max_processes=settings.try_max_processes or None,
        max_file_bytes=settings.try_max_file_bytes or None,
    )


def upstream_results(ti: TaskInstance) -> dict:
    if not ti.upstream:
        return {}
    return dict(_UPSTREAM_RESULTS.rows(list(ti.upstream), run_id=ti.run_id))


_UPSTREAM_RESULTS = CompiledIn(
    lambda ids, run_id: (
        TaskInstance.select(TaskInstance.task_id, TaskInstance.result)
        .where((TaskInstance.run == run_id) & TaskInstance.task_id.in_(ids))
        .tuples()
    )
)


class TryObserver(supervisor.Observer):
    """Streams a try's output into task_log in chunks, heartbeats the row, and tells the
    sandbox to stop when the try is no longer running (cancelled)."""

    def __init__(self, ti_id: int, try_number: int, heartbeat_s: float, cap_bytes: int):
        self.ti_id, self.try_number = ti_id, try_number
        self.heartbeat_s, self.cap_bytes = heartbeat_s, cap_bytes
        self.buffer: list[str] = []
        self.buffered = self.written = self.seq = 0
        self.truncated = False
        self.last_heartbeat = time.monotonic()
        self.secret_values: list[str] = []  # masked as *** in what is written

    def output(self, text: str) -> None:
        if self.truncated:
            return
        room = self.cap_bytes - self.written - self.buffered
        if len(text) > room:
            text = text[: max(room, 0)] + f"\n[brisa] log truncated at {self.cap_bytes} bytes\n"
            self.truncated = True
        self.buffer.append(text)
        self.buffered += len(text)
        if self.buffered >= FLUSH_BYTES:
            self.flush()

    def tick(self) -> bool:
        """Flush the log and heartbeat; a database outage keeps the try running (the log
        waits in the buffer), and the final compare-and-set decides whose outcome stands."""
        try:
            self.flush()
            if time.monotonic() - self.last_heartbeat < self.heartbeat_s:
                return True
            self.last_heartbeat = time.monotonic()
            return transitions.heartbeat(self.ti_id, self.try_number)
        except DB_ERRORS:
            log.warning("task instance %s: database unreachable, the try goes on", self.ti_id)
            discard_connection()
            return True

    def flush(self) -> None:
        if not self.buffer:
            return
        chunk = secrets.mask("".join(self.buffer), self.secret_values)
        TaskLog.create(
            task_instance=self.ti_id, try_number=self.try_number, seq=self.seq, chunk=chunk
        )
        self.seq += 1
        self.written += self.buffered
        self.buffer, self.buffered = [], 0
