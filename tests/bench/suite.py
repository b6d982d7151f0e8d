"""Every benchmark on one backend, in one start of the Procfile's processes.

Postgres + Redis are a cluster and a redis-server of the bench's own (tests/bench/servers.py:
their counters are then the bench's alone). The order keeps the benchmarks apart: the worker
starts with 4 threads (fan-out with its CPU per try, invoke, webhooks, the memory figures over
many tasks); on Postgres the scale-out follows (fan-outs on that worker, then on two worker
processes, with the statements, commits and WAL per task); then one worker with 1 thread runs
the chain, and with worker and clock stopped the tick is timed alone. Bare huey runs with
Brisa stopped, and the history benchmark (tests/bench/history.py) in this process last.
"""

import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from app.cli import devserver
from app.store import db
from tests.bench import baseline, environments, history, raw_huey, workloads
from tests.bench.measure import CpuMeter, process_tree_memory
from tests.bench.servers import Servers, private_servers, read_counts
from tests.bench.targets import judge
from tests.system import E2E_REDIS_URL, procfile_system

PARALLEL_THREADS, CHAIN_THREADS = 4, 1
WARM_UP_WIDTH = 10
SETTLE_S = 1.0  # after the last task, before an idle memory figure
# Postgres reports an idle server process's commits within 10 s (servers.read_counts).
STATS_REPORTED_S = 11.0


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
    scaleout_runs: int  # fan-outs on one worker process, and as many on two
    stats_wait_s: float  # before reading the commits (quick: none, the figures are rough)


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
    scaleout_runs=3,
    stats_wait_s=STATS_REPORTED_S,
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
    scaleout_runs=1,
    stats_wait_s=0,
)


def worker_of(system, huey_instance: str = "app.worker.consumer.huey"):
    """The running Procfile process consuming ``huey_instance`` (the worker, or the clock)."""
    return next(p for p in system.processes if huey_instance in p.args[-1] and p.poll() is None)


def workers_of(system) -> list:
    return [p for p in system.processes if "app.worker.consumer" in p.args[-1] and p.poll() is None]


def warm_up(base: str, width: int = WARM_UP_WIDTH) -> None:
    """Start the workers' fork servers and fill their caches before anything is measured."""
    workloads.until_served(base)
    workloads.put_dag(base, workloads.fanout_spec(width))
    workloads.fanout_rate(base, width)
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
    """The versions of the servers this process is bound to (the soak reports them too)."""
    if backend == "embedded":
        return {"sqlite": sqlite3.sqlite_version}
    with db.db.connection_context():
        postgres = db.db.execute_sql("SHOW server_version").fetchone()[0]
    return {
        "postgres": postgres,
        "redis": redis.Redis.from_url(E2E_REDIS_URL).info()["redis_version"],
    }


def on_parallel_worker(system, sizes: Sizes) -> dict:
    """Fan-out (with the worker's CPU over every fan-out), invoke, webhooks, and the worker's
    memory: idle after a small warm-up, then before and after the tasks for the growth figure
    (fan-outs fill what the others left)."""
    base = system.base
    workloads.put_dag(base, workloads.fanout_spec(sizes.fanout))
    warm_up(base)
    idle = idle_memory(system)
    cpu = CpuMeter([worker_of(system).pid])
    with cpu:
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
    with cpu:
        rates += workloads.run_tasks(base, still_to_run, sizes.fanout, deadline)
    figures["fanout1000"] = {
        **workloads.fanout_summary(sizes.fanout, rates),
        "cpu_per_try": cpu.per_task_ms(len(rates) * (sizes.fanout + 2)),
    }
    figures["worker_memory"] = memory_figures(idle, warmed, system, counted_from)
    return figures


def counted_fanouts(system, servers: Servers, sizes: Sizes) -> dict:
    """``sizes.scaleout_runs`` fan-outs on the running (warm) workers, which are stopped after
    them so that their server processes exit and report their last commits: the median rate,
    and per task the statements, commits and WAL bytes of the whole system (web, workers and
    clock; the bench's own polls taken off), and the workers' CPU."""
    workers = workers_of(system)
    time.sleep(sizes.stats_wait_s)  # every idle server process has reported its commits
    before = read_counts(servers.postgres)
    with CpuMeter([worker.pid for worker in workers]) as cpu:
        runs, polls = workloads.fanouts_quietly(
            system.base, sizes.fanout, sizes.scaleout_runs, servers.database_url
        )
    devserver.stop(workers)
    used = read_counts(servers.postgres) - before
    tasks = sizes.scaleout_runs * (sizes.fanout + 2)
    rates = workloads.fanout_rates(sizes.fanout, runs)
    return {
        "worker_processes": len(workers),
        **workloads.fanout_summary(sizes.fanout, rates),
        "statements_per_task": round((used.statements - polls) / tasks, 2),
        "commits_per_task": round((used.commits - polls) / tasks, 2),
        "wal_bytes_per_task": round(used.wal_bytes / tasks),
        "cpu_per_task": cpu.per_task_ms(tasks),
    }


def scale_out(system, servers: Servers, sizes: Sizes, output) -> dict:
    """The fan-out on the parallel worker, then on two worker processes like it (started and
    warmed up), each counted; their ratio. Leaves no worker running."""
    one = counted_fanouts(system, servers, sizes)
    threads = {"BRISA_WORKER_THREADS": str(PARALLEL_THREADS)}
    for _ in range(2):
        system.start("worker", output, threads)
    warm_up(system.base, width=4 * PARALLEL_THREADS)
    two = counted_fanouts(system, servers, sizes)
    ratio = round(two["tasks_per_s"] / one["tasks_per_s"], 2)
    return {"threads_each": PARALLEL_THREADS, "one": one, "two": two, "ratio": ratio}


def measure_brisa(backend: str, sizes: Sizes, var_dir: Path, output, servers) -> dict:
    extra_env = {"BRISA_WORKER_THREADS": str(PARALLEL_THREADS)}
    extra_env |= servers.env() if servers else {}
    with (
        procfile_system(backend, var_dir, output=output, extra_env=extra_env) as system,
        workloads.bound_to(system) as settings,
    ):
        workloads.deploy_functions(system.base)
        figures = on_parallel_worker(system, sizes)
        if servers:
            figures["scaleout"] = scale_out(system, servers, sizes, output)
        else:
            devserver.stop(workers_of(system))
        system.start("worker", output, {"BRISA_WORKER_THREADS": str(CHAIN_THREADS)})
        workloads.until_served(system.base)
        workloads.invoke_sequential(system.base, 3)  # its caches filled
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


def measure_all(backend: str, sizes: Sizes, tmp: Path, output, servers) -> dict:
    figures = measure_brisa(backend, sizes, tmp / "var", output, servers)
    figures["servers"] = servers.versions() if servers else server_versions(backend)
    sqlite_path = str(tmp / "raw-huey.db") if backend == "embedded" else None
    redis_url = servers.raw_huey_redis_url if servers else raw_huey.REDIS_URL
    figures["raw_huey"] = baseline.measure(sizes, PARALLEL_THREADS, sqlite_path, redis_url, output)
    figures["environments"] = environments.measure(sizes is QUICK)
    figures["history50k"] = history.measure(backend, sizes is QUICK)
    return figures


def run_backend(backend: str, quick: bool = False) -> dict:
    """Every benchmark on ``backend`` ("postgres" or "embedded"): its figures, and each
    judged against its target."""
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="brisa-bench-") as folder:
        tmp = Path(folder)
        log = tmp / "processes.log"
        with open(log, "w") as output:
            try:
                if backend == "postgres":
                    with private_servers() as servers:
                        figures = measure_all(backend, sizes, tmp, output, servers)
                else:
                    figures = measure_all(backend, sizes, tmp, output, None)
            except BaseException:
                output.flush()
                print_tail(log)
                raise
    compare_with_raw(figures)
    ordered = ("chain40", "fanout1000", "invoke", "webhooks", "tick", "scaleout", "raw_huey")
    ordered += ("history50k", "worker_memory", "environments")
    return {
        "sizes": asdict(sizes),
        "servers": figures["servers"],
        "figures": {name: figures[name] for name in ordered if name in figures},
        "targets": judge(figures, backend, quick),
    }
