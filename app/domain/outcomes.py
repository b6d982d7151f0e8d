"""How a try ended, as the worker records it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """ok: the handler returned (``result``; ``branch``: the downstream tasks it chose) or
    skipped itself (``skipped``, with its reason in ``error``); not ok: ``error`` says why."""

    ok: bool
    result: object = None
    error: str | None = None
    skipped: bool = False
    branch: tuple | None = None


# The error of a try its worker stopped because its task instance was finished by someone
# else meanwhile (its heartbeat found it no longer running).
STOPPED = (
    "stopped: the task instance is no longer running (cancelled, marked, or its run timed out)"
)
