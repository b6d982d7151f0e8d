"""``make soak``: chaos at scale; nothing lost, nothing twice.

    SOAK_RUNS=10000 SOAK_SECONDS=1200 python -m tests.soak

Starts a Postgres cluster and a Redis of its own (tests/soak/servers.py: the chaos restarts
them, so never the machine's shared ones), the Procfile's processes on them (one web, two
workers, two clocks), and sends SOAK_RUNS runs mixed (chains, fan-outs, retries, signed
webhooks, invokes waiting or called back: tests/soak/load.py) while the chaos loop kills and
restarts a process or a server every few seconds (tests/soak/chaos.py). Then it waits for the
drain and checks the ledger (tests/soak/ledger.py), and prints the table for
docs/reliability.md. Exits 1 if a run or a callback was lost, or a try ran twice.

Settings, from the environment: SOAK_RUNS (10000), SOAK_SECONDS (1200: the load and the chaos
stop then, whatever was sent), SOAK_DRAIN_SECONDS (300: then the drain), SOAK_SEED (the chaos'
random choices; drawn and printed if unset), SOAK_SENDERS (8 threads), SOAK_BACKLOG (200 runs
unfinished at most while sending). Not part of ``make test`` (no test_*.py holds it).
"""

import collections
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.soak import servers


def plan_from_environment():
    from tests.soak.run import Plan

    return Plan(
        runs=int(os.environ.get("SOAK_RUNS", "10000")),
        seconds=float(os.environ.get("SOAK_SECONDS", "1200")),
        drain_seconds=float(os.environ.get("SOAK_DRAIN_SECONDS", "300")),
        seed=int(os.environ.get("SOAK_SEED") or random.randrange(1 << 30)),
        senders=int(os.environ.get("SOAK_SENDERS", "8")),
        backlog=int(os.environ.get("SOAK_BACKLOG", "200")),
    )


TARGETS = {"redis": "Redis", "postgres": "Postgres"}  # the others: the process types
WORKLOADS = {
    "chain": "chain of 3",
    "retry": "fails its 1st try",
    "webhook": "webhook",
    "callback": "invoke, called back",
    "fanout": "fan-out 1+4+1",
    "invoke": "invoke, waiting",
}


def faults_cell(faults) -> str:
    """The faults injected, by target and how, most first:
    '87: worker 39 (26 SIGKILL, 13 SIGTERM), Redis 13, ...'."""
    by_target = collections.defaultdict(collections.Counter)
    for fault in faults:
        by_target[fault.target][fault.how] += 1
    parts = []
    for target, hows in sorted(by_target.items(), key=lambda item: -item[1].total()):
        detail = ", ".join(f"{n} {how}" for how, n in hows.most_common())
        only_crashes = set(hows) == {"crash"}
        parts.append(f"{TARGETS.get(target, target)} {hows.total()}")
        parts[-1] += "" if only_crashes else f" ({detail})"
    return f"{len(faults)}: " + ", ".join(parts)


def verdict(value: int, good: bool) -> str:
    return f"{value} {'✓' if good else '✗'}"


def table(outcome) -> str:
    """The verdict (the runs' and the callbacks' losses apart), then a row per workload."""
    workloads, callbacks = outcome.rows[:-1], outcome.rows[-1]
    lost = sum(row.lost for row in workloads)
    duplicated = sum(row.duplicated for row in workloads)
    delivered = f"{callbacks.answered} of {callbacks.runs}"
    delivered += " ✓" if callbacks.answered == callbacks.runs else " ✗"
    drain = "did not drain ✗" if outcome.drain_s is None else f"{outcome.drain_s:.1f} s"
    lines = [
        "| faults injected | runs | lost | duplicated | callbacks delivered | time to drain |",
        "|---|---|---|---|---|---|",
        f"| {faults_cell(outcome.faults)} | {sum(r.runs for r in workloads)} "
        f"| {verdict(lost, lost == 0)} | {verdict(duplicated, duplicated == 0)} "
        f"| {delivered} | {drain} |",
        "",
        "| workload | answered | runs | tasks | tries run | lost | duplicated | failed "
        "| extra runs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in workloads:
        lines.append(
            f"| {WORKLOADS.get(row.kind, row.kind)} | {row.answered} | {row.runs} | {row.tasks} "
            f"| {row.executions} | {row.lost} | {row.duplicated} | {row.failed} "
            f"| {row.extra_runs} |"
        )
    return "\n".join(lines)


def summary(outcome) -> str:
    plan, sent = outcome.plan, [s for s in outcome.submissions if s.sent]
    unanswered = sum(row.unanswered for row in outcome.rows)
    cut = sum(s.cut for s in outcome.submissions)
    callbacks = outcome.rows[-1]
    versions = ", ".join(f"{k} {v}" for k, v in outcome.servers.items())
    return (
        f"{len(sent)} of {plan.runs} submissions sent in {outcome.load_s:.0f} s "
        f"(bound {plan.seconds:.0f} s), {unanswered} never answered, {cut} requests cut "
        f"and sent again; chaos seed {plan.seed}. Callbacks: {callbacks.runs} runs finished "
        f"with a callback_url, {callbacks.lost} never called back, {callbacks.extra_runs} "
        f"deliveries repeated.\n"
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"{versions}."
    )


def problems(found: list[str], shown: int = 25) -> str:
    if not found:
        return "No run lost, no try run twice, every callback delivered."
    lines = [f"problems: {len(found)} (the first {min(shown, len(found))}; failed runs too):"]
    return "\n".join(lines + [f"  {problem}" for problem in found[:shown]])


def main() -> int:
    """Runs the soak and prints its table; the folder (the processes' log, the ledger, the
    Postgres cluster) is kept, and named, when something was lost or ran twice."""
    folder = Path(tempfile.mkdtemp(prefix="brisa-soak-"))
    log = folder / "processes.log"
    with servers.private_servers(folder) as (postgres, queue), open(log, "w") as output:
        # only now: tests.conftest reads the servers' URLs when imported (see run.py)
        from tests.bench.suite import print_tail
        from tests.soak.run import soak

        plan = plan_from_environment()
        print(f"soak: {plan}", flush=True)
        try:
            outcome = soak(plan, postgres, queue, folder, output)
        except BaseException:
            output.flush()
            print_tail(log)
            print(f"kept: {folder}")
            raise
    found = [problem for row in outcome.rows for problem in row.problems]
    print(f"\n{summary(outcome)}\n\n{table(outcome)}\n\n{problems(found)}")
    if any(row.lost or row.duplicated for row in outcome.rows):
        (folder / "problems.txt").write_text("\n".join(found) + "\n")
        print(f"kept: {folder} (problems.txt, processes.log with CHAOS: lines, ledger.txt,")
        print("  the Postgres cluster in pgdata/)")
        return 1
    shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s")
    sys.exit(code)
