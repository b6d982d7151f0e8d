"""One soak: the Procfile's processes on the soak's own Postgres and Redis (tests/system.py),
the load sent while the chaos loop runs, then the drain and the ledger's verdict.

Import it only once tests/soak/servers.py has named those servers in the environment:
tests/conftest.py reads them when it is imported.
"""

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.domain.states import RUN_FINISHED
from app.store import db
from app.store.models import DagRun
from tests.bench.suite import server_versions
from tests.bench.workloads import bound_to
from tests.faults.test_faults import FAST
from tests.soak import chaos, ledger, load
from tests.system import procfile_system

# The fault suite's timings; callbacks may reach the receiver on loopback (egress is refused
# to private addresses unless allowed).
ENV = {**FAST, "BRISA_EGRESS_ALLOW": "127.0.0.1"}
PROGRESS_EVERY_S = 15
DRAIN_POLL_S = 1.0
CALLBACK_SETTLE_S = 30


@dataclass(frozen=True)
class Plan:
    runs: int  # submissions to send
    seconds: float  # the load and the chaos stop then, sent or not
    drain_seconds: float  # then at most this long for every run and callback to finish
    seed: int  # the chaos loop's random choices
    senders: int  # threads sending at once
    backlog: int  # runs unfinished at most before the senders wait


@dataclass
class Outcome:
    plan: Plan
    servers: dict
    faults: list[chaos.Fault]
    submissions: list[load.Submission]
    rows: list[ledger.Figures]
    load_s: float  # the load and the chaos, seconds
    drain_s: float | None  # from the chaos's end to the last run or callback; None: never


def soak(plan: Plan, postgres, queue, folder: Path, output) -> Outcome:
    ledger_path = folder / "ledger.txt"
    with (
        procfile_system("postgres", folder / "var", output=output, extra_env=ENV) as system,
        bound_to(system),
        load.Receiver() as receiver,
    ):
        secret = load.deploy(system.base, str(ledger_path))
        fleet = chaos.Fleet(system, output)
        sender = load.Sender(system.base, receiver.url, secret, time.monotonic() + plan.seconds)
        started = time.monotonic()
        with chaos.running(fleet, postgres, queue, plan.seed, system.base) as loop:
            with progress(loop):
                submissions = load.drive(sender, plan.runs, plan.senders, plan.backlog)
        load_s, chaos_ended = time.monotonic() - started, time.time()
        drain(receiver, time.monotonic() + plan.drain_seconds)
        runs, tasks = db.retrying(ledger.load_runs, 60), db.retrying(ledger.load_tasks, 60)
        executions = ledger.read_executions(ledger_path)
        rows = ledger.check(submissions, runs, tasks, executions, receiver.deliveries)
        return Outcome(
            plan,
            server_versions("postgres"),
            loop.faults,
            submissions,
            rows,
            load_s,
            ledger.drain_seconds(runs, receiver.deliveries, chaos_ended),
        )


def drain(receiver: load.Receiver, deadline: float) -> None:
    """Until every run has finished, then until every finished run with a callback_url was
    called back, for CALLBACK_SETTLE_S at most: a callback comes a second or two after its
    run ends, or never (the receiver never fails); ``deadline`` (monotonic) bounds both."""

    def finished(runs: list[ledger.Run]) -> bool:
        return all(run.state in RUN_FINISHED for run in runs)

    def called_back(runs: list[ledger.Run]) -> bool:
        received = {run_id for _at, _id, run_id, _state in receiver.deliveries}
        return all(run.id in received for run in runs if run.callback)

    _wait_until(finished, deadline)
    _wait_until(called_back, min(deadline, time.monotonic() + CALLBACK_SETTLE_S))


def _wait_until(done, deadline: float) -> None:
    while time.monotonic() < deadline and not done(db.retrying(ledger.load_runs, 60)):
        time.sleep(DRAIN_POLL_S)


@contextlib.contextmanager
def progress(loop: chaos.Chaos):
    """A line every PROGRESS_EVERY_S while the load runs: runs stored, unfinished, faults."""
    stopping = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not stopping.wait(PROGRESS_EVERY_S):
            try:
                with db.db.connection_context():
                    stored = DagRun.select().count()
                    unfinished = DagRun.select().where(DagRun.state.not_in(load.FINISHED)).count()
            except db.DB_ERRORS:
                db.discard_connection()
                stored = unfinished = "?"
            print(
                f"  {time.monotonic() - started:5.0f} s: {stored} runs stored, {unfinished} "
                f"unfinished, {len(loop.faults)} faults injected",
                flush=True,
            )

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join()
