"""Run one function call in a child process: forked warm from a fork server, killed at its
wall-clock timeout, its output streamed back as it is written.

The fork server is a clean single-threaded process that has already imported
``app.sandbox.child``; forking from it (not from a threaded worker) never copies a lock held
by another thread. A fork still costs a few milliseconds, so a spare child is forked ahead
of time, in the background, and waits for its job: a try starts by handing it the job.
"""

import atexit
import codecs
import dataclasses
import io
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import ForkServerProcess, set_spawning_popen

from app.domain.outcomes import STOPPED, Outcome
from app.sandbox import child as sandbox_child
from app.sandbox.job import Job

# The child unpickles a _WarmProcess, so this module is preloaded too: importing it in each
# child (dataclasses, inspect, ...) cost about 8 ms a try.
forkserver.set_forkserver_preload(
    ["app.sandbox.fork_server_session", "app.sandbox.child", "app.sandbox.supervisor"]
)

# Never in the fork server's environment: a function could read it from /proc/self/environ
# (or /proc/<fork server>/environ), whatever the child does to os.environ.
SECRET_VARIABLES = ("DATABASE_URL", "REDIS_URL", "REDIS_TLS_URL", "SECRET_KEY")
_fork_server_lock = threading.Lock()
_running: dict = {}  # key -> the Process of a run() under way, for kill(key)
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The supervisor's knobs. The worker sets them from BRISA_SANDBOX_TICK_S and
    BRISA_SANDBOX_SPARES (app/config.py) with ``configure``: app/sandbox reads no settings
    of its own. The defaults here are those variables' defaults."""

    tick_s: float = 0.25  # how often the observer is asked whether to go on (flush, cancel)
    spares: int = 1  # children kept forked ahead; a try that finds none forks its own


_tuning = Tuning()


def configure(tick_s: float, spares: int) -> None:
    """Set this process's knobs (the worker, at its start)."""
    global _tuning
    if not tick_s > 0 or spares < 0:
        raise ValueError(
            f"sandbox tick must be above 0 s and spares at least 0: {tick_s}, {spares}"
        )
    _tuning = Tuning(tick_s=tick_s, spares=spares)


def tuning() -> Tuning:
    """This process's knobs."""
    return _tuning


class _WarmPopen(popen_forkserver.Popen):
    """The stdlib's forkserver Popen, less one step: the child does not re-import the
    parent's ``__main__`` (huey_consumer, gunicorn, pytest); it needs only the modules the
    fork server preloaded. The body is ``popen_forkserver.Popen._launch`` otherwise."""

    _fds: list[int]  # set by the stdlib's __init__ (typeshed does not declare it)

    def _launch(self, process_obj):
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, _close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


def _close_fds(*fds: int) -> None:
    """``multiprocessing.util.close_fds``, which typeshed does not declare."""
    for fd in fds:
        os.close(fd)


class _WarmProcess(ForkServerProcess):
    channels: tuple = ()  # an executor's: the worker's ends of its jobs, outcomes, output

    @staticmethod
    def _Popen(process_obj):
        return _WarmPopen(process_obj)


class Observer:
    """What the caller hears while the child runs. ``tick`` returning False kills the child."""

    def output(self, text: str) -> None:
        pass

    def tick(self) -> bool:
        return True


def run(job: Job, timeout: float, observer: Observer | None = None, key=None) -> Outcome:
    """Run ``job`` (see app/sandbox/child.py ``main``) for at most ``timeout`` seconds and return
    its outcome; never raises for what the
    function does: a crash, a hang, a kill or bad output all come back as a failed Outcome.
    With ``key``, ``kill(key)`` from another thread ends it early."""
    observer = observer or Observer()
    job = dataclasses.replace(job, workdir=tempfile.mkdtemp(prefix="brisa-try-"))
    child = _take_spare() or _Child.fork()
    _ask_for_spare()
    try:
        _running[key] = child.process
        child.jobs.send(job)
        return _supervise(child.process, child.output, child.outcome, timeout, observer)
    except OSError:  # the child died before taking its job (its fork server was killed)
        return Outcome(False, error=death(child.process.exitcode))
    finally:
        _running.pop(key, None)
        child.close(wait=False)
        shutil.rmtree(job.workdir, ignore_errors=True)


class _Child:
    """A forked child waiting for its job, with the worker's ends of its three channels."""

    def __init__(self, process, jobs, output, outcome):
        self.process, self.jobs, self.output, self.outcome = process, jobs, output, outcome

    @classmethod
    def fork(cls) -> "_Child":
        start_fork_server()
        output_here, output_there = socket.socketpair()
        outcome_here, outcome_there = multiprocessing.Pipe(duplex=False)
        jobs_there, jobs_here = multiprocessing.Pipe(duplex=False)
        process = _WarmProcess(
            target=sandbox_child.main, args=(jobs_there, output_there, outcome_there)
        )
        try:
            process.start()
        except BaseException:
            for handle in (output_here, outcome_here, jobs_here):
                handle.close()
            raise
        finally:
            for handle in (output_there, outcome_there, jobs_there):
                handle.close()
        return cls(process, jobs_here, output_here, outcome_here)

    def close(self, wait: bool = True) -> None:
        """Kill the child's process group; then wait for its exit status, here or (not
        ``wait``) in the background, off the try's path."""
        kill_group(self.process)
        for handle in (self.jobs, self.output, self.outcome):
            handle.close()
        if wait:
            self.process.join(5)
        else:
            in_background(lambda: self.process.join(5))


def start_executor(command: list, env: dict):
    """Start a warm executor from the fork server (so its parent holds none of Brisa's
    settings and a function that kills its parent cannot kill the worker): ``command`` is
    its interpreter's command line, ``env`` its whole environment. Returns the process, with
    ``channels``: the worker's ends (jobs, outcomes, output)."""
    start_fork_server()
    output_here, output_there = socket.socketpair()
    outcomes_here, outcomes_there = multiprocessing.Pipe(duplex=False)
    jobs_there, jobs_here = multiprocessing.Pipe(duplex=False)
    process = _WarmProcess(
        target=sandbox_child.exec_executor,
        args=(command, env, jobs_there, outcomes_there, output_there),
    )
    try:
        process.start()
    except BaseException:
        for handle in (output_here, outcomes_here, jobs_here):
            handle.close()
        raise
    finally:
        for handle in (output_there, outcomes_there, jobs_there):
            handle.close()
    process.channels = (jobs_here, outcomes_here, output_here)
    return process


_spares: list[_Child] = []
_spares_lock = threading.Lock()


def _take_spare() -> _Child | None:
    with _spares_lock:
        while _spares:
            child = _spares.pop()
            if child.process.is_alive():
                return child
            child.close()
    return None


@atexit.register
def _close_spares() -> None:
    """Let the spares go before multiprocessing, at exit, waits for its children: a spare
    would wait for a job forever."""
    with _spares_lock:
        while _spares:
            _spares.pop().close()


_chores: queue.SimpleQueue = queue.SimpleQueue()  # done by one background thread
_chores_pid = None  # the process whose background thread runs (none after a fork)


def _ask_for_spare() -> None:
    in_background(_add_spare)


def in_background(chore) -> None:
    """Do ``chore()`` in this process's sandbox thread: forking spares, reaping children."""
    global _chores_pid
    with _spares_lock:
        if _chores_pid != os.getpid():
            _chores_pid = os.getpid()
            threading.Thread(target=_do_chores, name="sandbox-chores", daemon=True).start()
    _chores.put(chore)


def _do_chores() -> None:
    while True:
        chore = _chores.get()
        try:
            chore()
        except Exception:  # noqa: BLE001 - one failed chore must not stop the next
            log.warning("sandbox chore failed", exc_info=True)


def _add_spare() -> None:
    with _spares_lock:
        if len(_spares) >= _tuning.spares:
            return
    child = _Child.fork()  # if it fails, the next try forks its own
    with _spares_lock:
        if len(_spares) < _tuning.spares:
            _spares.append(child)
            return
    child.close()


def kill(key) -> bool:
    """Kill the child of the run() under way with this key, and its process group."""
    process = _running.get(key)
    if process is None:
        return False
    kill_group(process)
    return True


def start_fork_server() -> None:
    """Make sure the fork server runs, started from an environment without Brisa's secrets.
    multiprocessing restarts a dead fork server by itself (a function may kill it: it is the
    child's parent) from the current environment, so every start goes through here; the
    scrub lasts only while ensure_running() may spawn, under a lock."""
    with _fork_server_lock:
        saved = {k: v for k, v in os.environ.items() if _is_secret(k)}
        # Started with the stop signals blocked, until it has left the worker's process
        # group (app/sandbox/fork_server_session.py): a group's Ctrl-C must not kill it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for key in saved:
                del os.environ[key]
            forkserver.ensure_running()
        finally:
            os.environ.update(saved)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _is_secret(name: str) -> bool:
    return name in SECRET_VARIABLES or name.startswith("BRISA_")


def _supervise(process, output, outcome_pipe, timeout, observer) -> Outcome:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tick_s = _tuning.tick_s
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + tick_s
    outcome = None
    waiting = [output, outcome_pipe]
    while outcome is None:
        now = time.monotonic()
        if now >= deadline:
            return Outcome(False, error=f"timed out after {timeout:g}s and was killed")
        if now >= next_tick:
            next_tick = now + tick_s
            if not observer.tick():
                return Outcome(False, error=STOPPED)
        ready = multiprocessing.connection.wait(waiting, timeout=min(deadline, next_tick) - now)
        if output in ready and not read_output(output, decoder, observer):
            waiting.remove(output)
        if outcome_pipe in ready:
            outcome = _receive(outcome_pipe, process)
    drain(output if output in waiting else None, decoder, observer)
    return outcome


def read_output(output, decoder, observer) -> bool:
    data = output.recv(65536)
    if data:
        observer.output(decoder.decode(data))
    return bool(data)


def drain(output, decoder, observer) -> None:
    """Read what the child printed before its outcome arrived: it flushed its output before
    sending the outcome (or died), so all of it is already in the socket; what a process it
    left behind writes later is not waited for (its group is killed next)."""
    while output is not None and multiprocessing.connection.wait([output], timeout=0):
        if not read_output(output, decoder, observer):
            break
    tail = decoder.decode(b"", final=True)
    if tail:
        observer.output(tail)


def _receive(outcome_pipe, process) -> Outcome:
    try:
        kind, payload, *rest = json.loads(outcome_pipe.recv_bytes())
    except (EOFError, OSError, ValueError, TypeError):
        process.join(5)  # its outcome pipe closed: it is gone, the fork server reports how
        return Outcome(False, error=death(process.exitcode))
    if kind == "ok":
        branch = tuple(rest[0]) if rest[0] is not None else None
        return Outcome(True, result=json.loads(payload), branch=branch)
    if kind == "skip":
        return Outcome(True, error=payload or None, skipped=True)
    return Outcome(False, error=payload)


def death(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        return f"the function's process was killed by {signal.Signals(-exitcode).name}"
    return f"the function's process exited with code {exitcode} before returning"


def kill_group(process) -> None:
    """Kill the child, its process group, and every process descended from it, also those
    that left the group (setpgid, setsid): see child.kill_descendants."""
    if process.pid is None:
        return
    sandbox_child.kill_descendants(process.pid)
    for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError, ValueError):
            pass
