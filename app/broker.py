"""The queue: huey instances on Redis or SQLite, the messages Brisa sends on them, and the
transport that carries the outbox's wake-ups (app/store/outbox.py) after each commit.

A message is only ``(task_instance_id, try_number)`` (or a run id for a callback): the database
is the truth, the queue a wake-up call. Redis when REDIS_URL is set, else huey's SQLite storage
under var/. Every process that changes state installs the transport (``install()``); only the
worker process serves tries: ``app.worker.consumer`` hands this module its try runner, as huey's
``Consumer(huey)`` receives its queue instead of importing it.
"""

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import redis
from huey import Huey
from huey.serializer import Serializer, SignedSerializer
from huey.storage import RedisStorage, SqliteStorage

from app import log_setup
from app.config import Settings, current
from app.domain.timeutil import as_utc, ceil_second
from app.engine import callbacks, dispatch
from app.store import outbox
from app.store.db import create_private, db, ensure_bound, retrying

QUEUE_NAME = "brisa"
log = logging.getLogger(__name__)


def storage_for(settings: Settings) -> tuple[type, dict]:
    if settings.redis_url:
        return RedisStorage, {"url": redis_url(settings.redis_url)}
    create_private(settings.queue_path)
    return SqliteStorage, {"filename": str(settings.queue_path), "timeout": 10}


def redis_url(url: str) -> str:
    """Heroku Redis serves TLS (rediss://) with a self-signed certificate: unless the URL says
    otherwise, such a connection is encrypted without verifying the certificate."""
    if url.startswith("rediss://") and "ssl_cert_reqs=" not in url:
        return url + ("&" if "?" in url else "?") + "ssl_cert_reqs=none"
    return url


class SignedMessages(SignedSerializer):
    """huey's signed serializer (pickle, then an HMAC of it), keyed from SECRET_KEY: a worker
    unpickles only messages a Brisa process of this deployment made. Anyone who can write
    to the queue (a shared Redis, a leaked URL) could otherwise run code in the worker, which
    holds SECRET_KEY. A message without the signature is dropped before it is unpickled,
    and logged. The key is derived on first use (the embedded default makes var/secret_key
    then)."""

    def __init__(self, settings: Settings):
        Serializer.__init__(self)
        self.separator = b":"
        self.settings = settings
        self.derived: bytes | None = None

    @property
    def _key(self) -> bytes:
        if self.derived is None:
            secret = self.settings.secret_key.encode()
            self.derived = hmac.new(secret, b"brisa-queue-messages", hashlib.sha256).digest()
        return self.derived

    def _deserialize(self, data: bytes):
        try:
            message = self._unsign(data)
        except ValueError:
            log.error("a queue message not signed with this deployment's key was dropped")
            raise
        return Serializer._deserialize(self, message)


def make_huey(name: str, settings: Settings) -> Huey:
    storage_class, storage_kwargs = storage_for(settings)
    return Huey(
        name,
        results=False,
        utc=True,
        serializer=SignedMessages(settings),
        storage_class=storage_class,
        **storage_kwargs,
    )


def rebind(instance: Huey, settings: Settings) -> None:
    """Point an existing huey instance (and the tasks registered on it) at another storage,
    its messages signed with that deployment's key."""
    instance.storage_class, instance.storage_kwargs = storage_for(settings)
    instance.storage = instance.create_storage()
    instance.serializer = SignedMessages(settings)


huey = make_huey(QUEUE_NAME, current())
huey.on_startup()(log_setup.configure)  # after huey_consumer set up its logging


def _no_try_runner(ti_id: int, try_number: int) -> None:
    raise RuntimeError("this process runs no tries: start a worker (app.worker.consumer)")


_try_runner: Callable[[int, int], None] = _no_try_runner


def serve_tries(runner: Callable[[int, int], None]) -> None:
    """The worker process hands in the function that runs one try (``ti_id, try_number``)."""
    global _try_runner
    _try_runner = runner


@huey.task()
def run_task_instance(ti_id: int, try_number: int) -> None:
    _try_runner(ti_id, try_number)


@huey.task()
def release_retry(ti_id: int, try_number: int) -> None:
    ensure_bound()
    with db.connection_context():
        dispatch.release_retry(ti_id, try_number)


@huey.task()
def deliver_callback(run_id: int, attempt: int) -> None:
    """Claim one attempt at a callback and hand it to this process's callback threads: a
    slow receiver never holds a task thread (at most BRISA_CALLBACK_CONCURRENCY attempts at
    once, the rest wait their turn). Through a database outage too (retried for
    BRISA_DB_RETRY_S); a message lost anyway is resent by the clock (callbacks.resend_lost)."""
    ensure_bound()
    settings = current()
    if retrying(lambda: _claim_callback(run_id, attempt), settings.db_retry_s):
        _callback_threads(settings.callback_concurrency).submit(_deliver, run_id, attempt)


def _claim_callback(run_id: int, attempt: int) -> bool:
    with db.connection_context():
        return callbacks.claim(run_id, attempt)


_callback_pool: ThreadPoolExecutor | None = None
_callback_pool_lock = threading.Lock()


def _callback_threads(size: int) -> ThreadPoolExecutor:
    global _callback_pool
    with _callback_pool_lock:
        if _callback_pool is None:
            _callback_pool = ThreadPoolExecutor(size, thread_name_prefix="callback")
        return _callback_pool


def _deliver(run_id: int, attempt: int) -> None:
    try:
        retrying(lambda: _send_callback(run_id, attempt), current().db_retry_s)
    except Exception:  # noqa: BLE001 - a thread of the pool: the clock resends what is lost
        log.exception("callback of run %s, attempt %d, could not be made", run_id, attempt)


def _send_callback(run_id: int, attempt: int) -> None:
    with db.connection_context():
        callbacks.send(run_id, attempt)


class HueyTransport:
    """The outbox's transport on huey (see ``outbox.Transport``). huey's Redis schedule keeps
    whole seconds (rounded down), so ETAs are rounded up: a message comes at most a scheduler
    interval late, never early."""

    def send_try(self, ti_id: int, try_number: int) -> None:
        try:
            run_task_instance(ti_id, try_number)
        except Exception:  # noqa: BLE001 - any storage error: the database keeps the truth
            log.warning(
                "queue unreachable: task instance %s try %s waits for the clock", ti_id, try_number
            )

    def send_retry_release(self, ti_id: int, try_number: int, eta: datetime) -> None:
        try:
            release_retry.schedule((ti_id, try_number), eta=as_utc(ceil_second(eta)))
        except Exception:  # noqa: BLE001 - the clock releases due retries anyway
            log.warning("queue unreachable: the retry of %s waits for the clock", ti_id)

    def send_callback(self, run_id: int, attempt: int, eta: datetime) -> None:
        try:
            deliver_callback.schedule((run_id, attempt), eta=as_utc(ceil_second(eta)))
        except Exception:  # noqa: BLE001 - a lost callback is logged; the run's URL serves it
            log.warning("queue unreachable: the callback of run %s was not sent", run_id)

    def send_run_ended(self, run_id: int) -> None:
        if current().redis_url:
            run_ends().publish(run_id)

    def watch_run(self, run_id: int, longest_pause_s: float) -> outbox.RunWatch:
        if not current().redis_url:  # huey's SQLite queue has no notices: poll
            return outbox.PollingWatch(longest_pause_s)
        return run_ends().watch(run_id, longest_pause_s)


def install() -> None:
    """Make this process's outbox send on huey."""
    outbox.set_transport(HueyTransport())


RUN_ENDS_CHANNEL = "brisa.run-ended"
RESUBSCRIBE_S = 1.0  # after the subscription broke, before subscribing again
NOTICE_SAFETY_S = 0.5  # a waiter reads its run at least this often: a notice can be lost


class RunEnds:
    """Notices of runs that ended, on Redis pub/sub, so that ``invoke?wait=`` wakes when its
    run ends instead of polling the database (as Celery's ``AsyncResult.get`` waits on a
    Redis subscription). Any process that ends a run publishes ``<deployment>:<run id>`` on
    one channel after the commit; each web process has one subscriber thread that wakes the
    run's waiters. A notice is only a hint: the waiter reads the run, and reads it anyway
    every NOTICE_SAFETY_S (a notice lost to a Redis restart), or on a millisecond-growing
    schedule while the subscription is not up. The deployment is a digest of DATABASE_URL:
    Redis channels ignore the database number, so deployments sharing a Redis server (and
    tests, a database each) never wake each other's waiters."""

    def __init__(self, url: str):
        self.url = url
        self.client = redis.Redis.from_url(url)
        self.lock = threading.Lock()
        self.waiters: dict[str, set[threading.Event]] = {}
        self.subscribed = threading.Event()
        self.thread: threading.Thread | None = None

    @staticmethod
    def key(run_id: int) -> str:
        deployment = hashlib.sha256(current().database_url.encode()).hexdigest()[:16]
        return f"{deployment}:{run_id}"

    def publish(self, run_id: int) -> None:
        try:
            self.client.publish(RUN_ENDS_CHANNEL, self.key(run_id))
        except Exception:  # noqa: BLE001 - waiters read the run anyway (NOTICE_SAFETY_S)
            log.warning("Redis unreachable: the end of run %s was not announced", run_id)

    def watch(self, run_id: int, longest_pause_s: float) -> "NoticeWatch":
        self._start()
        return NoticeWatch(self, self.key(run_id), longest_pause_s)

    def add(self, key: str, event: threading.Event) -> None:
        with self.lock:
            self.waiters.setdefault(key, set()).add(event)

    def remove(self, key: str, event: threading.Event) -> None:
        with self.lock:
            events = self.waiters.get(key, set())
            events.discard(event)
            if not events:
                self.waiters.pop(key, None)

    def _start(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._listen, name="run-ends", daemon=True)
                self.thread.start()

    def _listen(self) -> None:
        while True:
            try:
                self._subscribed_loop()
            except Exception as exc:  # noqa: BLE001 - subscribe again; waiters poll meanwhile
                log.warning("run-end notices interrupted (%s); waiters poll meanwhile", exc)
            self.subscribed.clear()
            self._wake(None)
            time.sleep(RESUBSCRIBE_S)

    def _subscribed_loop(self) -> None:
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(RUN_ENDS_CHANNEL)
            for message in pubsub.listen():
                if message["type"] == "subscribe":
                    self.subscribed.set()
                    self._wake(None)  # whatever ended before this subscription: read again
                elif message["type"] == "message":
                    self._wake(message["data"].decode())
        finally:
            pubsub.close()

    def _wake(self, key: str | None) -> None:
        """Set the waiters of ``key``'s run (None: every waiter)."""
        with self.lock:
            if key is None:
                events = [event for events in self.waiters.values() for event in events]
            else:
                events = list(self.waiters.get(key, ()))
        for event in events:
            event.set()


class NoticeWatch:
    """One waiter of one run on RunEnds (see outbox.RunWatch)."""

    def __init__(self, notices: RunEnds, key: str, longest_pause_s: float):
        self.notices, self.key = notices, key
        self.event = threading.Event()
        self.polling = outbox.PollingWatch(longest_pause_s)
        notices.add(key, self.event)

    def wait(self, seconds: float) -> bool:
        if not self.notices.subscribed.is_set():
            return self.polling.wait(seconds) or self._take()
        self.event.wait(min(seconds, NOTICE_SAFETY_S))
        return self._take()

    def _take(self) -> bool:
        noticed = self.event.is_set()
        self.event.clear()
        return noticed

    def close(self) -> None:
        self.notices.remove(self.key, self.event)


_run_ends: RunEnds | None = None
_run_ends_lock = threading.Lock()


def run_ends() -> RunEnds:
    """This process's run-end notices, on the queue's Redis server (made on first use)."""
    global _run_ends
    url = redis_url(current().redis_url or "")
    with _run_ends_lock:
        if _run_ends is None or _run_ends.url != url:
            _run_ends = RunEnds(url)
        return _run_ends


def waiting_tries() -> set[tuple[int, int]]:
    """The ``(ti_id, try_number)`` of every try message waiting in the queue."""
    task_class = run_task_instance.task_class
    return {tuple(t.args) for t in huey.pending() if isinstance(t, task_class)}


def queue_counts() -> tuple[int, int]:
    """(messages waiting, messages waiting for their ETA) in the worker queue."""
    return huey.pending_count(), huey.scheduled_count()
