"""The targets of issues #8 and #18, each figure judged against its own, and the table they
print as.

The targets are for Postgres + Redis on 2 cores. The embedded default is allowed 3x of each
speed target (three times the time, a third of the rate); not of a ratio to bare huey (which
runs on the same SQLite then), nor of losing nothing, memory and its growth. Some figures
are only measured on Postgres + Redis (the scale-out, the statements and commits). A quick
run's sizes are too small to judge: it shows no verdict.
"""

import operator
from dataclasses import dataclass

EMBEDDED_SLACK = 3
COMPARE = {"<": operator.lt, "≤": operator.le, ">": operator.gt, "≥": operator.ge, "=": operator.eq}
BACKENDS = ("postgres", "embedded")
FIGURE_WIDTH = 36  # the table's figure column


@dataclass(frozen=True)
class Target:
    benchmark: str
    figure: str
    path: str  # where the figure is in a backend's figures, dotted: "invoke.sequential.p50_ms"
    unit: str
    bound: str | None = None  # one of COMPARE; None: reported, not judged
    limit: float | None = None
    speed: bool = True  # a speed target: the embedded default gets EMBEDDED_SLACK
    backends: tuple[str, ...] = BACKENDS  # where it is measured

    def limit_for(self, backend: str) -> float | None:
        if backend != "embedded" or not self.speed or self.limit is None:
            return self.limit
        lower_is_better = self.bound in ("<", "≤")
        return self.limit * EMBEDDED_SLACK if lower_is_better else self.limit / EMBEDDED_SLACK

    def shown(self, limit: float) -> str:
        return f"{self.bound} {number(limit)} {self.unit}".strip()


def exact(benchmark: str, figure: str, path: str, unit: str = "", **kwargs) -> Target:
    """A target that is not a speed: the embedded default gets no slack."""
    return Target(benchmark, figure, path, unit, speed=False, **kwargs)


POSTGRES = ("postgres",)
MEMORY = "worker_memory"
SCALE = "scaleout"
HISTORY = "history50k"
# (key of tests/bench/history.py's figures, what it is, its p50 target in ms)
HISTORY_READS = [
    ("metrics", "/metrics", 50),
    ("api_dags", "API: the DAGs", 50),
    ("api_dag_runs_big200", "API: big200's 100 runs", 50),
    ("api_run_big200", "API: a big200 run", 50),
    ("ui_index", "UI: the DAGs page", 50),
    ("ui_index_poll", "UI: the DAGs page's poll", 50),
    ("ui_dag_small", "UI: a small DAG's page", 50),
    ("ui_dag_big200", "UI: big200's page", 50),
    ("ui_grid_poll_big200", "UI: big200's grid poll", 100),
]


def history_targets() -> list[Target]:
    rows = [Target(HISTORY, "runs kept", f"{HISTORY}.runs_kept", "")]
    for key, what, limit in HISTORY_READS:
        rows.append(Target(HISTORY, f"{what} p50", f"{HISTORY}.{key}.p50_ms", "ms", "<", limit))
        rows.append(Target(HISTORY, f"{what}: statements", f"{HISTORY}.{key}.statements", ""))
    return rows


def scaleout_targets() -> list[Target]:
    rows = [
        Target(SCALE, "1 worker process", f"{SCALE}.one.tasks_per_s", "/s", backends=POSTGRES),
        Target(SCALE, "2 worker processes", f"{SCALE}.two.tasks_per_s", "/s", backends=POSTGRES),
        exact(
            SCALE, "2 processes ÷ 1", f"{SCALE}.ratio", "×", bound="≥", limit=1.6, backends=POSTGRES
        ),
    ]
    for processes, key in (("1 process", "one"), ("2 processes", "two")):
        for figure, name, unit in (
            ("statements", "statements_per_task", ""),
            ("commits", "commits_per_task", ""),
            ("WAL written", "wal_bytes_per_task", "B"),
            ("worker CPU", "cpu_per_task.total_ms", "ms"),
        ):
            path = f"{SCALE}.{key}.{name}"
            rows.append(
                Target(SCALE, f"per task, {processes}: {figure}", path, unit, backends=POSTGRES)
            )
    return rows


TARGETS = [
    Target("chain40", "trigger → success", "chain40.wall_s", "s"),
    Target("chain40", "hand-off p50", "chain40.handoff_p50_ms", "ms", "<", 2.5),
    Target("chain40", "hand-off p95", "chain40.handoff_p95_ms", "ms", "<", 5),
    Target("chain40", "in the function p50", "chain40.in_function_p50_ms", "ms"),
    exact("chain40", "× the bare huey chain", "chain40.vs_raw_huey", "×", bound="≤", limit=4),
    Target("fanout1000", "tasks/s, trigger → success", "fanout1000.tasks_per_s", "/s", "≥", 500),
    exact(
        "fanout1000",
        "of bare huey's rate",
        "fanout1000.share_of_raw_huey",
        "%",
        bound="≥",
        limit=30,
    ),
    Target("fanout1000", "worker CPU per try", "fanout1000.cpu_per_try.total_ms", "ms"),
    Target("fanout1000", "  of it, its children", "fanout1000.cpu_per_try.children_ms", "ms"),
    Target("invoke", "1 client p50", "invoke.sequential.p50_ms", "ms", "<", 10),
    Target("invoke", "1 client p99", "invoke.sequential.p99_ms", "ms", "<", 25),
    Target("invoke", "1 client", "invoke.sequential.per_s", "req/s"),
    Target("invoke", "16 clients p50", "invoke.concurrent.p50_ms", "ms"),
    Target("invoke", "16 clients p99", "invoke.concurrent.p99_ms", "ms"),
    Target("invoke", "16 clients", "invoke.concurrent.per_s", "req/s", "≥", 300),
    Target("webhooks", "accepted, 32 clients", "webhooks.accepted_per_s", "/s", "≥", 500),
    exact("webhooks", "accepted without a run", "webhooks.lost", bound="=", limit=0),
    exact("webhooks", "runs beyond 1 per delivery", "webhooks.duplicated", bound="=", limit=0),
    Target("tick", "one tick, 10% of DAGs due", "tick.duration_s", "s", "<", 0.3),
    *scaleout_targets(),
    Target("raw huey", "bare chain, 1 thread", "raw_huey.chain.wall_s", "s"),
    Target("raw huey", "bare chain hand-off p50", "raw_huey.chain.handoff_p50_ms", "ms"),
    Target("raw huey", "bare no-op tasks, 4 threads", "raw_huey.noop.tasks_per_s", "/s"),
    *history_targets(),
    Target("worker RSS", "idle: worker", f"{MEMORY}.idle.worker_mb", "MB"),
    Target("worker RSS", "idle: its children", f"{MEMORY}.idle.children_mb", "MB"),
    exact("worker RSS", "idle: together", f"{MEMORY}.idle.total_mb", "MB", bound="<", limit=100),
    Target("worker RSS", "idle: together, PSS", f"{MEMORY}.idle.total_pss_mb", "MB"),
    Target(
        "worker RSS", "after 1 fan-out: together", f"{MEMORY}.after_first_fanout.total_mb", "MB"
    ),
    Target("worker RSS", "after the tasks: together", f"{MEMORY}.after_tasks.total_mb", "MB"),
    exact(
        "worker RSS", "tasks run for the growth", f"{MEMORY}.tasks_since", bound="≥", limit=10_000
    ),
    exact("worker RSS", "growth over those tasks", f"{MEMORY}.growth_mb", "MB", bound="<", limit=5),
    exact("executors", "warm try p50", "environments.warm_try_p50_ms", "ms", bound="<", limit=0.5),
    Target("executors", "warm try p95", "environments.warm_try_p95_ms", "ms"),
    exact(
        "executors",
        "cold executor p50",
        "environments.cold_executor_p50_ms",
        "ms",
        bound="<",
        limit=150,
    ),
    exact(
        "executors",
        "idle executor RSS",
        "environments.idle_executor_rss_mb",
        "MB",
        bound="<",
        limit=25,
    ),
    exact(
        "executors",
        "deploy with a package",
        "environments.deploy_with_package_s",
        "s",
        bound="<",
        limit=2,
    ),
]


def targets_for(backend: str) -> list[Target]:
    return [target for target in TARGETS if backend in target.backends]


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def figure_at(figures: dict, path: str):
    for key in path.split("."):
        figures = figures[key]
    return figures


def judge(figures: dict, backend: str, quick: bool) -> list[dict]:
    """Every figure of TARGETS with its target for this backend and whether it was met."""
    rows = []
    for target in targets_for(backend):
        value, limit = figure_at(figures, target.path), target.limit_for(backend)
        row = {"benchmark": target.benchmark, "figure": target.figure, "path": target.path}
        row.update(value=value, unit=target.unit, target=None, met=None)
        if limit is not None:
            row["target"] = target.shown(limit)
            row["met"] = None if quick else COMPARE[target.bound](value, limit)
        rows.append(row)
    return rows


def verdict(met: bool | None, has_target: bool) -> str:
    if not has_target:
        return ""
    return {True: "met", False: "MISSED", None: "(quick)"}[met]


def table(rows: list[dict]) -> str:
    lines = [f"  {'benchmark':<11} {'figure':<{FIGURE_WIDTH}} {'value':>12}  {'target':<12} "]
    for row in rows:
        value = f"{row['value']:g} {row['unit']}".strip()
        lines.append(
            f"  {row['benchmark']:<11} {row['figure']:<{FIGURE_WIDTH}} {value:>12}  "
            f"{row['target'] or '':<12} "
            f"{verdict(row['met'], row['target'] is not None)}"
        )
    return "\n".join(line.rstrip() for line in lines)
