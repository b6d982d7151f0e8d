"""The outbox: the wake-up calls a transaction owes the queue, sent only after its commit.

The database is the truth and the queue a wake-up call (docs/architecture.md, "Data flow"). A state
change that makes work ready (a try queued, a retry due, a callback due) records its wake-up
here; it leaves when the transaction commits (peewee's ``after_commit``), never before, so a
worker never receives a message for a row it cannot see yet, and a rolled-back change sends
nothing. The store does not know huey: each process installs the transport that carries the
messages (``app.broker.install()``), as dramatiq's ``set_broker()`` does. A process with no
transport (the CLI's local commands) sends nothing: the clock's tick recovers queued tries
whose wake-up never came (``BRISA_QUEUED_TIMEOUT``).
"""

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from app.store.db import db

log = logging.getLogger(__name__)


class Transport(Protocol):
    """Carries wake-ups to the workers. Each method sends at once and never raises: a message
    it cannot send is logged, and the clock recovers the work from the database."""

    def send_try(self, ti_id: int, try_number: int) -> None: ...

    def send_retry_release(self, ti_id: int, try_number: int, eta: datetime) -> None: ...

    def send_callback(self, run_id: int, attempt: int, eta: datetime) -> None: ...

    def send_run_ended(self, run_id: int) -> None: ...

    def watch_run(self, run_id: int, longest_pause_s: float) -> "RunWatch": ...


class RunWatch(Protocol):
    """A waiter's view of one run's end (``invoke?wait=``): ``wait`` returns True when a notice
    says the run may have ended, False after at most ``seconds``; the waiter then reads the run.
    A notice can be lost (a Redis restart), so waiters read the run again now and then."""

    def wait(self, seconds: float) -> bool: ...

    def close(self) -> None: ...


class PollingWatch:
    """A watch without notices (no Redis): pauses start a millisecond apart and grow 1.2x to
    ``longest_s``, so a run that ends within milliseconds is seen within a millisecond or two
    and a slow one is not asked about a thousand times."""

    def __init__(self, longest_s: float):
        self.pause, self.longest = 0.001, longest_s

    def wait(self, seconds: float) -> bool:
        time.sleep(max(0.0, min(self.pause, seconds)))
        self.pause = min(self.pause * 1.2, self.longest)
        return False

    def close(self) -> None:
        pass


class _NoTransport:
    def send_try(self, ti_id: int, try_number: int) -> None:
        log.debug("no transport: task instance %s try %s waits for the clock", ti_id, try_number)

    def send_retry_release(self, ti_id: int, try_number: int, eta: datetime) -> None:
        log.debug("no transport: the retry of task instance %s waits for the clock", ti_id)

    def send_callback(self, run_id: int, attempt: int, eta: datetime) -> None:
        log.warning("no transport: the callback of run %s is not sent", run_id)

    def send_run_ended(self, run_id: int) -> None:
        pass  # nobody in this process waits on notices

    def watch_run(self, run_id: int, longest_pause_s: float) -> RunWatch:
        return PollingWatch(longest_pause_s)


_transport: Transport = _NoTransport()


def set_transport(transport: Transport | None) -> None:
    """Install this process's transport (None: send nothing)."""
    global _transport
    _transport = transport if transport is not None else _NoTransport()


def get_transport() -> Transport:
    return _transport


def try_queued(ti_id: int, try_number: int) -> None:
    """Wake a worker for this queued try once the transaction commits."""
    db.after_commit(lambda: _transport.send_try(ti_id, try_number))


def tries_queued(tries: Iterable[tuple[int, int]]) -> None:
    """``try_queued`` for many ``(ti_id, try_number)`` pairs."""
    tries = list(tries)

    def send_all() -> None:
        for ti_id, number in tries:
            _transport.send_try(ti_id, number)

    if tries:
        db.after_commit(send_all)


def retry_due(ti_id: int, try_number: int, eta: datetime) -> None:
    """Release this retry at ``eta`` (UTC) once the transaction commits."""
    db.after_commit(lambda: _transport.send_retry_release(ti_id, try_number, eta))


def callback_due(run_id: int, attempt: int, eta: datetime) -> None:
    """Call back this run's receiver (attempt ``attempt``) at ``eta``, after the commit."""
    db.after_commit(lambda: _transport.send_callback(run_id, attempt, eta))


def run_ended(run_id: int) -> None:
    """Tell the run's waiters (``invoke?wait=``) it has ended, once the transaction commits."""
    db.after_commit(lambda: _transport.send_run_ended(run_id))
