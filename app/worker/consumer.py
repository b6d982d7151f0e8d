"""The worker process's entry point: ``huey_consumer app.worker.consumer.huey`` (the Procfile's
``worker``).

It consumes the broker's queue (app/broker.py), serves each try message with the try runner
(app/worker/try_runner.py), installs the transport that sends the successors' wake-ups, and
hands a try back to the queue when the consumer stops before the try ends.
"""

import signal

from huey import signals
from huey.consumer import Consumer

from app import broker
from app.config import current
from app.sandbox import scratch, supervisor
from app.store.db import ensure_bound
from app.worker import try_runner

huey = broker.huey


class GracefulConsumer(Consumer):
    """huey's consumer, with SIGINT as graceful as SIGTERM (``--graceful-signal TERM``): a
    terminal's Ctrl-C, like ``docker stop``, Heroku and honcho, lets running tries finish
    within ``--shutdown-timeout`` and hands back the rest without spending a retry
    (give_back_interrupted). A second signal stops at once, handing back, as huey does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._signal_actions[signum] = (False, True)  # (restart, graceful)


def _create_consumer(**options) -> Consumer:
    return GracefulConsumer(huey, **options)


huey.create_consumer = _create_consumer  # what huey_consumer calls
broker.install()
_settings = current()
scratch.claim()  # before anything makes a temporary directory (the fork server does)
supervisor.configure(tick_s=_settings.sandbox_tick_s, spares=_settings.sandbox_spares)
# Now, not at the first try: the fork server leaves this process group as it starts, and a
# stop signal sent to the group while it started could kill it with the try it was forking.
supervisor.start_fork_server()


def run_try(ti_id: int, try_number: int) -> None:
    ensure_bound()
    try_runner.run_try(ti_id, try_number)


broker.serve_tries(run_try)


@huey.signal(signals.SIGNAL_INTERRUPTED)
def give_back_interrupted(signal, task, *_args) -> None:
    """The consumer stopped (SIGTERM, after its --shutdown-timeout grace) with this task still
    running: hand the try back instead of leaving it to the heartbeat rule."""
    if isinstance(task, broker.run_task_instance.task_class):
        try_runner.give_back_on_shutdown(*task.args)
