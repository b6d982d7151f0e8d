"""A warm executor: one process, started in a function version's environment, that serves
successive tries of that version (AWS Lambda's execution-environment reuse).

Started by the worker (app/sandbox/executors.py), through the fork server, with the
environment's interpreter, isolated (``python -I``): this module on its path and nothing of
Brisa's own packages. It confines
itself once (memory limit, no Brisa settings in its environment), then serves one Job at a
time from its job pipe and answers each with one outcome frame, both JSON (never pickle: the
worker must not unpickle what a function's process wrote). The module is executed on the first
try and its handler kept: module-level state survives between warm tries, as Lambda documents.
What each try gets fresh: its event, secrets and context; a scratch working directory (also
HOME and TMPDIR); ``sys.path``, the environment and every signal handler as they were at start;
a CPU-time limit. A try that leaves a thread or a child process running makes the executor
exit after answering (the next try starts a new one), so a try's log holds only its own lines.
"""

import json
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection

from app.sandbox import child
from app.sandbox.job import Job


def main(memory_mb: int, jobs_fd: int, outcomes_fd: int) -> None:
    """Serve jobs until the worker closes the job pipe (EOF) or a try leaves debris. The
    first try executes the module (the cold start's init); if that fails, the try fails with
    the module's error and the executor exits, so the next try tries the init again (as
    Lambda retries a failed init)."""
    jobs = Connection(jobs_fd, writable=False)
    outcomes = Connection(outcomes_fd, readable=False)
    child.limit_memory(memory_mb)
    child.become_subreaper()
    baseline = _Baseline()
    handler = None
    while True:
        try:
            job = Job.from_json(jobs.recv_bytes().decode())
        except EOFError:
            os._exit(0)
        baseline.restore(job)
        debris = None
        if handler is None:
            handler, debris = _load(job)
        result = child.call(job, handler)
        debris = debris or _debris()
        sys.stdout.flush()
        sys.stderr.flush()
        if debris:  # nothing the try started outlives it, in or out of its process group
            child.kill_descendants(os.getpid())
        outcomes.send_bytes(json.dumps([*result, debris]).encode())
        if debris:
            os._exit(0)


def _load(job: Job):
    """(the handler, None), or (a handler that raises the module's error, why to exit)."""
    try:
        return child.load_handler(job.source, job.handler, job.filename), None
    except BaseException as exc:  # noqa: BLE001 - the module's own errors fail its try
        error = exc

        def raising(event, context):
            raise error

        return raising, "its module failed to load"


class _Baseline:
    """What the executor restores before each try."""

    def __init__(self) -> None:
        self.path = list(sys.path)
        self.environ = dict(os.environ)
        self.handlers = {sig: signal.getsignal(sig) for sig in _catchable()}

    def restore(self, job: Job) -> None:
        sys.path[:] = self.path
        for sig, handler in self.handlers.items():
            if handler is not None and signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)
        child.confine_try(job, self.environ)


def _catchable() -> list[signal.Signals]:
    uncatchable = {signal.SIGKILL, signal.SIGSTOP}
    return [
        s for s in signal.valid_signals() if isinstance(s, signal.Signals) and s not in uncatchable
    ]


def _debris() -> str | None:
    """Why this process must not serve another try: a thread or a child process the try left
    running (its output would land in the next try's log)."""
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        return f"the try left {len(threads)} thread(s) running"
    children = _children()
    if children:
        return f"the try left {len(children)} process(es) running"
    return None


def _children() -> list[int]:
    """Live child processes (zombies reaped first)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        return []
    found: list[int] = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as listing:
            found += [int(pid) for pid in listing.read().split()]
    return found


if __name__ == "__main__":
    main(*map(int, sys.argv[1:4]))
