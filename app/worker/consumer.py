"""The worker process's entry point: ``huey_consumer app.worker.consumer.huey`` (the Procfile's
``worker``).

It consumes the broker's queue (app/broker.py), serves each try message with the try runner
(app/worker/try_runner.py), installs the transport that sends the successors' wake-ups, and
hands a try back to the queue when the consumer stops before the try ends.
"""

from huey import signals

from app import broker
from app.config import current
from app.sandbox import supervisor
from app.store.db import ensure_bound
from app.worker import try_runner

huey = broker.huey
broker.install()
_settings = current()
supervisor.configure(tick_s=_settings.sandbox_tick_s, spares=_settings.sandbox_spares)


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
