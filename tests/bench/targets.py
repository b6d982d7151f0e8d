"""The targets of issue #8, each figure judged against its own, and the table they print as.

The targets are for Postgres + Redis on 2 cores; the embedded default is allowed 3x of each
speed target (three times the time, a third of the rate). Losing nothing, memory and its
growth are the same for both. A quick run's sizes are too small to judge: it shows no verdict.
"""

import operator
from dataclasses import dataclass

EMBEDDED_SLACK = 3
COMPARE = {"<": operator.lt, "≤": operator.le, ">": operator.gt, "≥": operator.ge, "=": operator.eq}


@dataclass(frozen=True)
class Target:
    benchmark: str
    figure: str
    path: str  # where the figure is in a backend's figures, dotted: "invoke.sequential.p50_ms"
    unit: str
    bound: str | None = None  # one of COMPARE; None: reported, not judged
    limit: float | None = None
    speed: bool = True  # a speed target: the embedded default gets EMBEDDED_SLACK

    def limit_for(self, backend: str) -> float | None:
        if backend != "embedded" or not self.speed or self.limit is None:
            return self.limit
        lower_is_better = self.bound in ("<", "≤")
        return self.limit * EMBEDDED_SLACK if lower_is_better else self.limit / EMBEDDED_SLACK

    def shown(self, limit: float) -> str:
        return f"{self.bound} {number(limit)} {self.unit}".strip()


MEMORY = "worker_memory"
TARGETS = [
    Target("chain40", "trigger → success", "chain40.wall_s", "s", "<", 0.4),
    Target("chain40", "hand-off p50", "chain40.handoff_p50_ms", "ms", "<", 5),
    Target("chain40", "hand-off p95", "chain40.handoff_p95_ms", "ms"),
    Target("chain40", "× the bare huey chain", "chain40.vs_raw_huey", "×", "≤", 4),
    Target("fanout1000", "tasks/s, trigger → success", "fanout1000.tasks_per_s", "/s", ">", 500),
    Target("fanout1000", "of bare huey's rate", "fanout1000.share_of_raw_huey", "%", "≥", 30),
    Target("invoke", "1 client p50", "invoke.sequential.p50_ms", "ms", "<", 10),
    Target("invoke", "1 client p99", "invoke.sequential.p99_ms", "ms", "<", 50),
    Target("invoke", "1 client", "invoke.sequential.per_s", "req/s"),
    Target("invoke", "16 clients p50", "invoke.concurrent.p50_ms", "ms"),
    Target("invoke", "16 clients p99", "invoke.concurrent.p99_ms", "ms"),
    Target("invoke", "16 clients", "invoke.concurrent.per_s", "req/s"),
    Target("webhooks", "accepted, 32 clients", "webhooks.accepted_per_s", "/s", ">", 500),
    Target("webhooks", "accepted without a run", "webhooks.lost", "", "=", 0, speed=False),
    Target("tick", "one tick, 10% of DAGs due", "tick.duration_s", "s", "<", 1),
    Target("raw huey", "bare chain, 1 thread", "raw_huey.chain.wall_s", "s"),
    Target("raw huey", "bare no-op tasks, 4 threads", "raw_huey.noop.tasks_per_s", "/s"),
    Target("worker RSS", "idle: worker", f"{MEMORY}.idle.worker_mb", "MB"),
    Target("worker RSS", "idle: its children", f"{MEMORY}.idle.children_mb", "MB"),
    Target("worker RSS", "idle: together", f"{MEMORY}.idle.total_mb", "MB", "<", 100, False),
    Target("worker RSS", "idle: together, PSS", f"{MEMORY}.idle.total_pss_mb", "MB"),
    Target(
        "worker RSS", "after 1 fan-out: together", f"{MEMORY}.after_first_fanout.total_mb", "MB"
    ),
    Target("worker RSS", "after the tasks: together", f"{MEMORY}.after_tasks.total_mb", "MB"),
    Target(
        "worker RSS", "tasks run for the growth", f"{MEMORY}.tasks_since", "", "≥", 10_000, False
    ),
    Target("worker RSS", "growth over those tasks", f"{MEMORY}.growth_mb", "MB", "<", 5, False),
    Target("executors", "warm try p50", "environments.warm_try_p50_ms", "ms", "<", 0.5, False),
    Target("executors", "warm try p95", "environments.warm_try_p95_ms", "ms"),
    Target(
        "executors", "cold executor p50", "environments.cold_executor_p50_ms", "ms", "<", 150, False
    ),
    Target(
        "executors", "idle executor RSS", "environments.idle_executor_rss_mb", "MB", "<", 25, False
    ),
    Target(
        "executors",
        "deploy with a package",
        "environments.deploy_with_package_s",
        "s",
        "<",
        2,
        False,
    ),
]


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def figure_at(figures: dict, path: str):
    for key in path.split("."):
        figures = figures[key]
    return figures


def judge(figures: dict, backend: str, quick: bool) -> list[dict]:
    """Every figure of TARGETS with its target for this backend and whether it was met."""
    rows = []
    for target in TARGETS:
        value, limit = figure_at(figures, target.path), target.limit_for(backend)
        row = {"benchmark": target.benchmark, "figure": target.figure, "value": value}
        row.update(unit=target.unit, target=None, met=None)
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
    lines = [f"  {'benchmark':<11} {'figure':<28} {'value':>14}  {'target':<14} "]
    for row in rows:
        value = f"{row['value']:g} {row['unit']}".strip()
        lines.append(
            f"  {row['benchmark']:<11} {row['figure']:<28} {value:>14}  {row['target'] or '':<14} "
            f"{verdict(row['met'], row['target'] is not None)}"
        )
    return "\n".join(line.rstrip() for line in lines)
