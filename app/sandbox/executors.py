"""Warm executors, the worker's side: a pool of processes, each started in one function
version's environment and serving that version's tries one at a time (app/sandbox/executor.py
is the process's side).

A try takes an idle executor of its version (a warm start) or starts one (a cold start: the
interpreter, then the module on its first try). After the try the executor goes back to the
pool unless it must be recycled: it timed out, crashed or was killed, it left a thread or a
process running, it served ``max_tries`` tries, or its memory grew by more than
``rss_growth_mb``. Idle executors are stopped after ``idle_s``; a worker keeps at most
``per_worker``, stopping the least recently used first. ``fresh`` isolation starts a new
executor for the try and stops it after (one process per try).
"""

import codecs
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from app.domain.outcomes import STOPPED, Outcome
from app.sandbox.job import Job
from app.sandbox.supervisor import (
    Observer,
    death,
    drain,
    in_background,
    kill_group,
    read_output,
    start_executor,
    tuning,
)

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"  # an executor's PATH: the system's
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOTSTRAP = (  # the executor's program: this checkout's app.sandbox, nothing else of Brisa's
    f"import sys; sys.path.insert(0, {PROJECT_ROOT!r}); "
    "from app.sandbox.executor import main; main(*map(int, sys.argv[1:4]))"
)


@dataclass(frozen=True)
class Spawn:
    """How to start an executor for one function version.

    key: what the executor holds, as a digest: its interpreter, memory limit, environment
    variables and module (source, handler, file name). Executors of one key serve only tries
    with that key, so an executor never runs another version's try, whatever the database ids
    (a worker may outlive a database, and tests make one per test).
    python: the environment's interpreter (``<env>/bin/python``).
    memory_mb: the address-space limit of the whole process, MiB.
    env: the version's environment variables (never a secret).
    """

    key: str
    python: str
    memory_mb: int
    env: dict = field(default_factory=dict)

    @classmethod
    def of(cls, job: Job, python: str) -> "Spawn":
        """The spawn of ``job``'s version in the environment of ``python``."""
        held = [python, job.memory_mb, job.env, job.source, job.handler, job.filename]
        key = hashlib.sha256(json.dumps(held, sort_keys=True).encode()).hexdigest()
        return cls(key, python, job.memory_mb, dict(job.env))


@dataclass(frozen=True)
class Limits:
    """When executors are recycled: after ``max_tries`` tries, ``idle_s`` seconds idle, or an
    RSS ``rss_growth_mb`` MiB above what it was after its first try; at most ``per_worker``
    executors live in one worker process."""

    max_tries: int = 1000
    idle_s: float = 300.0
    rss_growth_mb: int = 256
    per_worker: int = 8


class Executor:
    """One executor process and the worker's ends of its channels."""

    def __init__(self, spawn: Spawn):
        self.spawn = spawn
        self.tries = 0
        self.last_used = time.monotonic()
        self.base_rss_kb: int | None = None
        self.dirty: str | None = None  # why it must not serve another try
        command = [spawn.python, "-I", "-u", "-c", BOOTSTRAP, str(spawn.memory_mb)]
        env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", **spawn.env}
        self.process = start_executor(command, env)
        self.jobs, self.outcomes, self.output = self.process.channels

    def run(self, job: Job, timeout: float, observer: Observer) -> Outcome:
        """Serve one try: at most ``timeout`` seconds, its output to ``observer``."""
        self.tries += 1
        workdir = tempfile.mkdtemp(prefix="brisa-try-")
        try:
            self._discard_stale_output()
            self.jobs.send_bytes(replace(job, workdir=workdir).to_json().encode())
            outcome = self._supervise(timeout, observer)
        except OSError:  # the executor died before taking the job
            self.process.join(5)
            outcome = Outcome(False, error=death(self.process.exitcode))
            self.dirty = "it died"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self.last_used = time.monotonic()
        return outcome

    def _supervise(self, timeout: float, observer: Observer) -> Outcome:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        deadline = time.monotonic() + timeout
        check_in_s = tuning().tick_s
        next_check_in = time.monotonic() + check_in_s
        waiting = [self.output, self.outcomes]
        while True:
            now = time.monotonic()
            if now >= deadline:
                self.dirty = "timed out"
                return Outcome(False, error=f"timed out after {timeout:g}s and was killed")
            if now >= next_check_in:
                next_check_in = now + check_in_s
                if not observer.tick():
                    self.dirty = "stopped"
                    return Outcome(False, error=STOPPED)
            wait_s = min(deadline, next_check_in) - now
            ready = multiprocessing.connection.wait(waiting, timeout=wait_s)
            if self.output in ready and not read_output(self.output, decoder, observer):
                waiting.remove(self.output)
            if self.outcomes in ready:
                outcome = self._receive()
                drain(self.output if self.output in waiting else None, decoder, observer)
                return outcome

    def _receive(self) -> Outcome:
        try:
            kind, payload, *rest = json.loads(self.outcomes.recv_bytes())
        except (EOFError, OSError, ValueError, TypeError):
            self.dirty = "it died"
            self.process.join(5)  # its pipe closed: it is gone, the fork server reports how
            return Outcome(False, error=death(self.process.exitcode))
        self.dirty = rest[-1] if rest else None
        if kind == "ok":
            branch = tuple(rest[0]) if rest[0] is not None else None
            return Outcome(True, result=json.loads(payload), branch=branch)
        if kind == "skip":
            return Outcome(True, error=payload or None, skipped=True)
        return Outcome(False, error=payload)

    def _discard_stale_output(self) -> None:
        while multiprocessing.connection.wait([self.output], timeout=0):
            if not self.output.recv(65536):
                break

    def rss_kb(self) -> int | None:
        try:
            with open(f"/proc/{self.process.pid}/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            return None

    def reusable(self, limits: Limits) -> bool:
        if self.dirty is not None or not self.process.is_alive():
            return False
        if self.tries >= limits.max_tries:
            return False
        rss = self.rss_kb()
        if self.base_rss_kb is None:
            self.base_rss_kb = rss
        return rss is None or rss - (self.base_rss_kb or 0) <= limits.rss_growth_mb * 1024

    def stop(self, wait_s: float = 0) -> None:
        """Kill the executor's process group, close its channels, and reap it: within
        ``wait_s`` seconds here (a stopped try's end is recorded only once its process is
        gone), else off this path."""
        kill_group(self.process)
        for handle in (self.jobs, self.outcomes, self.output):
            handle.close()
        if wait_s:
            self.process.join(wait_s)
        if self.process.is_alive():
            in_background(lambda: self.process.join(5))


class Pool:
    """The worker's executors, idle ones by version key, at most ``limits.per_worker`` alive."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._idle: OrderedDict[int, Executor] = OrderedDict()  # by id(), least recent first
        self._busy: dict[object, Executor] = {}  # by the try's key, for kill()
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._closed = threading.Event()

    def run(
        self, spawn: Spawn, job: Job, timeout: float, observer: Observer, key=None, fresh=False
    ) -> tuple[Outcome, bool]:
        """Run ``job`` in an executor of ``spawn.key``; returns (outcome, cold start?)."""
        executor = None if fresh else self._checkout(spawn.key)
        cold = executor is None
        if executor is None:
            self._make_room()
            executor = Executor(spawn)
        with self._lock:
            self._busy[key] = executor
        try:
            outcome = executor.run(job, timeout, observer)
        finally:
            with self._lock:
                self._busy.pop(key, None)
        if not fresh and executor.reusable(self.limits):
            self._checkin(executor)
        else:
            executor.stop(wait_s=1.0 if executor.dirty else 0)
        return outcome, cold

    def kill(self, key) -> bool:
        """Kill the executor running the try with this key (it is not reused)."""
        with self._lock:
            executor = self._busy.get(key)
        if executor is None:
            return False
        executor.dirty = "killed"
        kill_group(executor.process)
        return True

    def stop_idle(self, now: float | None = None) -> int:
        """Stop the executors idle for longer than ``idle_s``; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [e for e in self._idle.values() if now - e.last_used > self.limits.idle_s]
            for executor in stale:
                del self._idle[id(executor)]
        for executor in stale:
            executor.stop()
        return len(stale)

    def stop_all(self) -> None:
        """Stop the reaper and every executor: idle ones now, busy ones killed (their tries
        fail as killed). For a worker's exit: multiprocessing joins every live child then."""
        self._closed.set()
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
            busy = list(self._busy.values())
        for executor in idle:
            executor.stop()
        for executor in busy:
            executor.dirty = "killed"
            kill_group(executor.process)

    def _checkout(self, version_key) -> Executor | None:
        self.stop_idle()
        with self._lock:
            for ident, executor in reversed(self._idle.items()):  # most recent first
                if executor.spawn.key == version_key:
                    del self._idle[ident]
                    return executor
        return None

    def _checkin(self, executor: Executor) -> None:
        with self._lock:
            self._idle[id(executor)] = executor
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="executor-reaper")
                self._reaper.daemon = True
                self._reaper.start()

    def _reap(self) -> None:
        """Stop idle executors on time, not only when a try comes: checks every quarter of
        ``idle_s`` (at most every 30 s) until stop_all()."""
        interval = min(self.limits.idle_s / 4, 30.0)
        while not self._closed.wait(interval):
            self.stop_idle()

    def _make_room(self) -> None:
        """Stop least recently used idle executors while the worker has its cap alive."""
        while True:
            with self._lock:
                if len(self._idle) + len(self._busy) < self.limits.per_worker or not self._idle:
                    return
                _, oldest = self._idle.popitem(last=False)
            oldest.stop()
