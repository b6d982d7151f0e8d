"""Every benchmark on one backend, in one start of the Procfile's processes.

The order keeps them apart: the worker starts with 4 threads (fan-out, invoke, webhooks, the
memory figures over many tasks), is replaced by one with 1 thread (the chain), then worker
and clock are stopped and the tick is timed alone; bare huey runs last, with Brisa stopped.
"""

import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from app.cli import devserver
from app.store import db
from tests.bench import baseline, environments, workloads
from tests.bench.measure import process_tree_memory
from tests.bench.targets import judge
from tests.system import E2E_REDIS_URL, procfile_system

PARALLEL_THREADS, CHAIN_THREADS = 4, 1
WARM_UP_WIDTH = 10
SETTLE_S = 1.0  # after the last task, before an idle memory figure


@dataclass(frozen=True)
class Sizes:
    chain: int
    chain_runs: int
    fanout: int  # its width; the figure is the median of every run of it
    invoke_sequential: int
    invoke_concurrent: int
    invoke_clients: int
    webhooks: int
    webhook_clients: int
    tasks_for_growth: int
    growth_budget_s: float  # or fewer tasks: the tasks' share of the run's time is bounded
    tick_dags: int
    tick_due: int
    raw_tasks: int


FULL = Sizes(
    chain=40,
    chain_runs=5,
    fanout=1000,
    invoke_sequential=200,
    invoke_concurrent=240,
    invoke_clients=16,
    webhooks=500,
    webhook_clients=32,
    tasks_for_growth=10_000,
    growth_budget_s=140,
    tick_dags=10_000,
    tick_due=1_000,
    raw_tasks=1000,
)
QUICK = Sizes(
    chain=5,
    chain_runs=1,
    fanout=20,
    invoke_sequential=10,
    invoke_concurrent=32,
    invoke_clients=16,
    webhooks=40,
    webhook_clients=32,
    tasks_for_growth=100,
    growth_budget_s=60,
    tick_dags=200,
    tick_due=20,
    raw_tasks=50,
)


def worker_of(system, huey_instance: str = "app.worker.consumer.huey"):
    """The running Procfile process consuming ``huey_instance`` (the worker, or the clock)."""
    return next(p for p in system.processes if huey_instance in p.args[-1] and p.poll() is None)


def replace_worker(system, threads: int, output):
    devserver.stop([worker_of(system)])
    return system.start("worker", output, {"BRISA_WORKER_THREADS": str(threads)})


def warm_up(base: str) -> None:
    """Start the worker's fork server and fill its caches before anything is measured."""
    workloads.put_dag(base, workloads.fanout_spec(WARM_UP_WIDTH))
    workloads.fanout_rate(base, WARM_UP_WIDTH)
    workloads.invoke_sequential(base, 5)


def idle_memory(system) -> dict:
    time.sleep(SETTLE_S)
    return process_tree_memory(worker_of(system).pid)


def memory_figures(idle: dict, warmed: dict, system, counted_from: int) -> dict:
    """Idle after a small warm-up; then growth from after the first full-size fan-out (which
    sets the allocator's high-water mark) over the tasks run since."""
    after = idle_memory(system)
    return {
        "threads": PARALLEL_THREADS,
        "idle": idle,
        "after_first_fanout": warmed,
        "tasks_since": workloads.finished_tasks() - counted_from,
        "after_tasks": after,
        "growth_mb": round(after["worker_mb"] - warmed["worker_mb"], 1),
        "growth_total_mb": round(after["total_mb"] - warmed["total_mb"], 1),
    }


def server_versions(backend: str) -> dict:
    if backend == "embedded":
        return {"sqlite": sqlite3.sqlite_version}
    with db.db.connection_context():
        postgres = db.db.execute_sql("SHOW server_version").fetchone()[0]
    return {
        "postgres": postgres,
        "redis": redis.Redis.from_url(E2E_REDIS_URL).info()["redis_version"],
    }


def on_parallel_worker(system, sizes: Sizes) -> dict:
    """Fan-out, invoke, webhooks, and the worker's memory: idle after a small warm-up, then
    before and after the tasks for the growth figure (fan-outs fill what the others left)."""
    base = system.base
    workloads.put_dag(base, workloads.fanout_spec(sizes.fanout))
    warm_up(base)
    idle = idle_memory(system)
    rates = [workloads.fanout_rate(base, sizes.fanout)]
    warmed, counted_from = idle_memory(system), workloads.finished_tasks()
    deadline = time.monotonic() + sizes.growth_budget_s
    figures = {
        "invoke": workloads.invoke(
            base, sizes.invoke_sequential, sizes.invoke_concurrent, sizes.invoke_clients
        ),
        "webhooks": workloads.webhooks(base, sizes.webhooks, sizes.webhook_clients),
    }
    still_to_run = sizes.tasks_for_growth - (workloads.finished_tasks() - counted_from)
    rates += workloads.run_tasks(base, still_to_run, sizes.fanout, deadline)
    figures["fanout1000"] = workloads.fanout_summary(sizes.fanout, rates)
    figures["worker_memory"] = memory_figures(idle, warmed, system, counted_from)
    return figures


def measure_brisa(backend: str, sizes: Sizes, var_dir: Path, output) -> dict:
    threads = {"BRISA_WORKER_THREADS": str(PARALLEL_THREADS)}
    with (
        procfile_system(backend, var_dir, output=output, extra_env=threads) as system,
        workloads.bound_to(system) as settings,
    ):
        workloads.deploy_functions(system.base)
        figures = {"servers": server_versions(backend), **on_parallel_worker(system, sizes)}
        replace_worker(system, CHAIN_THREADS, output)
        workloads.invoke_sequential(system.base, 3)  # starts its fork server
        figures["chain40"] = workloads.chain(system.base, sizes.chain, sizes.chain_runs)
        devserver.stop([worker_of(system), worker_of(system, "app.clock.periodic.huey")])
        figures["tick"] = workloads.tick(settings, sizes.tick_dags, sizes.tick_due)
    return figures


def compare_with_raw(figures: dict) -> None:
    """Brisa's chain and fan-out as ratios to bare huey's."""
    raw = figures["raw_huey"]
    chain, fanout = figures["chain40"], figures["fanout1000"]
    chain["vs_raw_huey"] = round(chain["wall_s"] / raw["chain"]["wall_s"], 1)
    fanout["share_of_raw_huey"] = round(100 * fanout["tasks_per_s"] / raw["noop"]["tasks_per_s"], 1)


def print_tail(log: Path, lines: int = 60) -> None:
    print(f"--- the last {lines} lines of the processes' output ---")
    print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]))


def run_backend(backend: str, quick: bool = False) -> dict:
    """Every benchmark on ``backend`` ("postgres" or "embedded"): its figures, and each
    judged against its target."""
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="brisa-bench-") as tmp:
        log = Path(tmp) / "processes.log"
        with open(log, "w") as output:
            try:
                figures = measure_brisa(backend, sizes, Path(tmp) / "var", output)
                sqlite_path = str(Path(tmp) / "raw-huey.db") if backend == "embedded" else None
                figures["raw_huey"] = baseline.measure(sizes, PARALLEL_THREADS, sqlite_path, output)
                figures["environments"] = environments.measure(quick)
            except BaseException:
                output.flush()
                print_tail(log)
                raise
    compare_with_raw(figures)
    ordered = ("chain40", "fanout1000", "invoke", "webhooks", "tick", "raw_huey", "worker_memory")
    ordered += ("environments",)
    return {
        "sizes": asdict(sizes),
        "servers": figures["servers"],
        "figures": {name: figures[name] for name in ordered},
        "targets": judge(figures, backend, quick),
    }
