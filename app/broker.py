"""The huey instance the workers consume, and the messages Brisa puts on it.

A message is only ``(task_instance_id, try_number)``: the database is the truth, the queue a
wake-up call. Redis when REDIS_URL is set, else huey's SQLite storage under var/.

Run a worker with ``huey_consumer app.broker.huey -n ...`` (see the Procfile).
"""

import logging
from datetime import datetime

from huey import Huey, signals
from huey.storage import RedisStorage, SqliteStorage

from app import log_setup as logs
from app.config import Settings, current
from app.domain.timeutil import as_utc, ceil_second
from app.store.db import db, ensure_bound

QUEUE_NAME = "brisa"
log = logging.getLogger(__name__)


def storage_for(settings: Settings) -> tuple[type, dict]:
    if settings.redis_url:
        return RedisStorage, {"url": redis_url(settings.redis_url)}
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStorage, {"filename": str(settings.queue_path), "timeout": 10}


def redis_url(url: str) -> str:
    """Heroku Redis serves TLS (rediss://) with a self-signed certificate: unless the URL says
    otherwise, such a connection is encrypted without verifying the certificate."""
    if url.startswith("rediss://") and "ssl_cert_reqs=" not in url:
        return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=none"
    return url


def make_huey(name: str, settings: Settings) -> Huey:
    storage_class, storage_kwargs = storage_for(settings)
    return Huey(name, results=False, utc=True, storage_class=storage_class, **storage_kwargs)


def rebind(instance: Huey, settings: Settings) -> None:
    """Point an existing huey instance (and the tasks registered on it) at another storage."""
    instance.storage_class, instance.storage_kwargs = storage_for(settings)
    instance.storage = instance.create_storage()


huey = make_huey(QUEUE_NAME, current())
huey.on_startup()(logs.configure)  # after huey_consumer set up its logging


@huey.task()
def run_task_instance(ti_id: int, try_number: int) -> None:
    from app.worker import try_runner as worker

    ensure_bound()
    worker.run_try(ti_id, try_number)


@huey.task()
def release_retry(ti_id: int, try_number: int) -> None:
    from app.engine import dispatch

    ensure_bound()
    with db.connection_context():
        dispatch.release_retry(ti_id, try_number)


@huey.task()
def deliver_callback(run_id: int, attempt: int) -> None:
    from app.engine import callbacks

    ensure_bound()
    with db.connection_context():
        callbacks.deliver(run_id, attempt)


def schedule_callback(run_id: int, attempt: int, eta: datetime) -> None:
    try:
        deliver_callback.schedule((run_id, attempt), eta=as_utc(ceil_second(eta)))
    except Exception:  # noqa: BLE001 - a lost callback is logged; the run's URL still serves it
        log.warning("queue unreachable: the callback of run %s was not sent", run_id)


@huey.signal(signals.SIGNAL_INTERRUPTED)
def hand_back_interrupted(signal, task, *_args) -> None:
    """The consumer stopped (SIGTERM, after its --shutdown-timeout grace) with this task still
    running: hand the try back instead of leaving it to the heartbeat rule."""
    if isinstance(task, run_task_instance.task_class):
        from app.worker import try_runner as worker

        worker.hand_back(*task.args)


def enqueue_task(ti_id: int, try_number: int) -> None:
    """Send the wake-up call for a queued try. If the queue is unreachable the try stays
    queued in the database, and the clock enqueues it again once it has waited
    BRISA_QUEUED_TIMEOUT: a trigger never fails because Redis is down."""
    try:
        run_task_instance(ti_id, try_number)
    except Exception:  # noqa: BLE001 - any storage error: the database keeps the truth
        log.warning(
            "queue unreachable: task instance %s try %s waits for the clock", ti_id, try_number
        )


def schedule_retry(ti_id: int, try_number: int, eta: datetime) -> None:
    """Release the retry at its time, by huey's scheduler; the clock's tick is the safety net
    if this message is lost. huey's Redis schedule keeps whole seconds (rounded down), so the
    ETA is rounded up: the release comes at most a scheduler interval late, never early."""
    try:
        release_retry.schedule((ti_id, try_number), eta=as_utc(ceil_second(eta)))
    except Exception:  # noqa: BLE001 - the clock releases due retries anyway
        log.warning("queue unreachable: the retry of task instance %s waits for the clock", ti_id)
