"""The chaos loop: every few seconds, one fault at random among every process type and both
servers. A Procfile process is killed (SIGKILL to its whole process group, as when a machine
or a container dies; or SIGTERM to the process alone, as a deploy stops it) and a new one
started in its place; Redis is SIGKILLed (it keeps nothing: every message, scheduled retry and
callback in it is gone) and Postgres stopped in immediate mode (crash recovery at the next
start), each down for a moment. Each fault is noted in the processes' log (``CHAOS:``).

The fleet is one web, two workers and two clocks. A process that exits without being killed
is started again and recorded as a fault it found (``exited``): none should.
"""

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from tests.system import System, wait_until_up

FLEET = {"web": 1, "worker": 2, "clock": 2}
# How often each fault is drawn, relative to the others.
WEIGHTS = {"worker": 4, "clock": 2, "web": 2, "redis": 1.5, "postgres": 1.5}
SIGTERM_SHARE = 0.25  # of process faults; the rest are SIGKILL
BETWEEN_S = (1.0, 4.0)  # seconds from one fault to the next, drawn uniformly
REDIS_DOWN_S = (0.5, 3.0)
POSTGRES_DOWN_S = (0.5, 5.0)
STOP_GRACE_S = 40  # a SIGTERMed process finishing its work (gunicorn waits for ?wait=)


@dataclass(frozen=True)
class Fault:
    target: str  # worker, clock, web, redis, postgres
    how: str  # SIGKILL, SIGTERM, crash, or exited (a process that died by itself)
    at: float  # unix time


class Fleet:
    """The Procfile processes by type, started and restarted through ``system``."""

    def __init__(self, system: System, output):
        self.system, self.output = system, output
        web, worker, clock = system.processes
        self.running = {"web": [web], "worker": [worker], "clock": [clock]}
        for process_type, count in FLEET.items():
            while len(self.running[process_type]) < count:
                self.running[process_type].append(system.start(process_type, self.output))

    def kill(self, process_type: str, rand: random.Random) -> str:
        """Kill one process of ``process_type`` (SIGKILL or SIGTERM, drawn) and start
        another in its place; returns the signal's name."""
        processes = self.running[process_type]
        victim = processes.pop(rand.randrange(len(processes)))
        sig = signal.SIGTERM if rand.random() < SIGTERM_SHARE else signal.SIGKILL
        stop(victim, sig)
        processes.append(self.system.start(process_type, self.output))
        return sig.name

    def restart_exited(self) -> list[Fault]:
        """Start again every process that exited by itself; a Fault for each."""
        found = []
        for process_type, processes in self.running.items():
            for index, process in enumerate(processes):
                if process.poll() is not None:
                    found.append(Fault(process_type, "exited", time.time()))
                    processes[index] = self.system.start(process_type, self.output)
        return found

    def live(self) -> list[subprocess.Popen]:
        return [p for processes in self.running.values() for p in processes]


def stop(process: subprocess.Popen, sig: signal.Signals) -> None:
    """SIGKILL: the process and its group at once (a machine lost). SIGTERM: the process
    alone, as ``docker stop`` does, given STOP_GRACE_S to exit; then whatever is left of its
    group is killed."""
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class Chaos:
    """The loop, in a thread: ``faults`` records what it did, in order."""

    def __init__(self, fleet: Fleet, postgres, queue, seed: int):
        self.fleet, self.postgres, self.queue = fleet, postgres, queue
        self.rand = random.Random(seed)
        self.faults: list[Fault] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None  # what stopped the loop early
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            self._faults_until_stopped()
        except BaseException as exc:  # noqa: BLE001 - raised again by running()
            self.error = exc

    def _faults_until_stopped(self) -> None:
        while not self.stopping.wait(self.rand.uniform(*BETWEEN_S)):
            found = self.fleet.restart_exited()
            target = self.rand.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            at = time.time()
            found.append(Fault(target, self._inject(target), at))
            for fault in found:
                self._note(fault)
            self.faults += found

    def _note(self, fault: Fault) -> None:
        """A line in the processes' log, to read what failed next to what was done."""
        stamp = datetime.fromtimestamp(fault.at, UTC).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
        print(f"[{stamp}] CHAOS: {fault.target} {fault.how}", file=self.fleet.output, flush=True)

    def _inject(self, target: str) -> str:
        if target in FLEET:
            return self.fleet.kill(target, self.rand)
        server, down_s = (
            (self.queue, REDIS_DOWN_S) if target == "redis" else (self.postgres, POSTGRES_DOWN_S)
        )
        server.crash()
        time.sleep(self.rand.uniform(*down_s))
        server.start()
        return "crash"


@contextlib.contextmanager
def running(fleet: Fleet, postgres, queue, seed: int, base: str):
    """The chaos loop while the block runs; on exit it stops, every process that died is
    started again, and the web answers ready. Yields the Chaos (its ``faults``)."""
    chaos = Chaos(fleet, postgres, queue, seed)
    chaos.thread.start()
    try:
        yield chaos
    finally:
        chaos.stopping.set()
        chaos.thread.join()
        if chaos.error is not None:
            raise RuntimeError("the chaos loop failed") from chaos.error
        chaos.faults += fleet.restart_exited()
        wait_until_up(base, fleet.live(), timeout=120)
