"""Read-only queries and shaping for the web UI: what each page and its polling show."""

import json
from collections import defaultdict

import peewee

from app.domain.timeutil import utcnow
from app.engine import dags
from app.store.models import DagRun, FunctionVersion, TaskInstance, TaskTry
from app.store.transitions import RUN_FINISHED, TASK_FINISHED

RECENT_RUNS = 12  # squares per DAG on the DAGs page
GRID_RUNS = 25  # columns in a DAG's grid
PREVIEW_CHARS = 240

# Graph geometry, in SVG user units.
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 168, 46, 64, 18, 12


def fmt_time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def fmt_duration(seconds) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def duration(started, finished) -> float | None:
    if started is None:
        return None
    return ((finished or utcnow()) - started).total_seconds()


def preview(value) -> str:
    if value is None:
        return ""
    text = json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


# DAGs page --------------------------------------------------------------------------------


def recent_runs(limit: int = RECENT_RUNS) -> dict[int, list[DagRun]]:
    """The last ``limit`` runs of every DAG, oldest first, in one query (a window function)."""
    rank = peewee.fn.ROW_NUMBER().over(partition_by=[DagRun.dag], order_by=[DagRun.id.desc()])
    ranked = DagRun.select(DagRun.id, rank.alias("rn")).where(DagRun.dag.is_null(False))
    ranked = ranked.alias("ranked")
    ids = DagRun.select(ranked.c.id).from_(ranked).where(ranked.c.rn <= limit)
    by_dag = defaultdict(list)
    for run in DagRun.select().where(DagRun.id.in_(ids)).order_by(DagRun.id):
        by_dag[run.dag_id].append(run)
    return by_dag


def run_square(run: DagRun) -> dict:
    return {
        "run_id": run.id,
        "state": run.state,
        "title": f"run {run.id} · {run.run_type} · {run.state} · {fmt_time(run.logical_date)}",
    }


def dag_rows() -> list[dict]:
    """One dict per DAG for the DAGs page and its polling."""
    runs = recent_runs()
    rows = []
    for dag, version in dags.current_versions():
        spec, recent = version.spec, runs.get(dag.id, [])
        last = recent[-1] if recent else None
        rows.append(
            {
                "dag_id": dag.dag_id,
                "description": spec.get("description") or "",
                "schedule": spec.get("schedule"),
                "timezone": spec.get("timezone") or "UTC",
                "paused": dag.paused,
                "version": version.version,
                "tasks": len(spec["tasks"]),
                "next_run_at": None if dag.paused else fmt_time(dag.next_run_at) or None,
                "last_state": last.state if last else None,
                "last_run_at": fmt_time(last.logical_date) if last else "",
                "runs": [run_square(r) for r in recent],
            }
        )
    return rows


def filter_rows(rows: list[dict], query: str, state: str) -> list[dict]:
    query = query.strip().lower()
    if query:
        rows = [
            r for r in rows if query in r["dag_id"].lower() or query in r["description"].lower()
        ]
    if state == "paused":
        rows = [r for r in rows if r["paused"]]
    elif state == "active":
        rows = [r for r in rows if not r["paused"]]
    elif state:
        rows = [r for r in rows if r["last_state"] == state]
    return rows


# A DAG's grid and graph -------------------------------------------------------------------


def topological_layers(tasks: list[dict]) -> dict[str, int]:
    """Longest-path layering: a task's layer is one more than its deepest upstream's, so
    every arrow points right. Specs are validated acyclic; unknown upstream ids are ignored."""
    upstream = {t["task_id"]: [u for u in t.get("upstream", [])] for t in tasks}
    layer: dict[str, int] = {}
    pending = list(upstream)
    while pending:
        progressed = []
        for task_id in pending:
            ups = [u for u in upstream[task_id] if u in upstream]
            if all(u in layer for u in ups):
                layer[task_id] = 1 + max((layer[u] for u in ups), default=-1)
                progressed.append(task_id)
        if not progressed:  # a cycle cannot be stored; lay out what is left in one column
            for task_id in pending:
                layer[task_id] = 1 + max(layer.values(), default=-1)
            break
        pending = [t for t in pending if t not in layer]
    return layer


def task_order(tasks: list[dict]) -> list[str]:
    """Task ids by layer, then in spec order: the grid's rows."""
    layers = topological_layers(tasks)
    index = {t["task_id"]: i for i, t in enumerate(tasks)}
    return sorted(layers, key=lambda t: (layers[t], index[t]))


def graph(tasks: list[dict]) -> dict:
    """Boxes and arrows for an SVG, laid out left to right by topological layer."""
    layers = topological_layers(tasks)
    columns = defaultdict(list)
    for task in tasks:
        columns[layers[task["task_id"]]].append(task)
    tallest = max((len(c) for c in columns.values()), default=0)
    height = tallest * (BOX_H + GAP_Y) - GAP_Y + 2 * PAD
    boxes = {}
    for col, members in columns.items():
        top = (height - (len(members) * (BOX_H + GAP_Y) - GAP_Y)) / 2
        for row, task in enumerate(members):
            boxes[task["task_id"]] = {
                "task_id": task["task_id"],
                "label": _clip(task["task_id"], 20),
                "function": _clip(task["function"], 24),
                "x": PAD + col * (BOX_W + GAP_X),
                "y": top + row * (BOX_H + GAP_Y),
            }
    edges = []
    for task in tasks:
        end = boxes[task["task_id"]]
        for up in task.get("upstream", []):
            if up in boxes:
                path = _edge_path(boxes[up], end, boxes.values())
                edges.append({"from": up, "to": task["task_id"], "path": path})
    width = (max(columns, default=-1) + 1) * (BOX_W + GAP_X) - GAP_X + 2 * PAD
    return {"boxes": list(boxes.values()), "edges": edges, "width": max(width, 0), "height": height}


def _edge_path(start: dict, end: dict, boxes) -> str:
    """A curve from the right of ``start`` to the left of ``end``. An arrow that skips
    layers and would cross a box on the way runs in a lane just above or below those boxes."""
    x1, y1 = start["x"] + BOX_W, start["y"] + BOX_H / 2
    x2, y2 = end["x"] - 4, end["y"] + BOX_H / 2
    low, high = min(y1, y2) - BOX_H / 2, max(y1, y2) + BOX_H / 2
    blockers = [
        b for b in boxes if x1 < b["x"] < end["x"] and b["y"] < high and b["y"] + BOX_H > low
    ]
    if not blockers:
        bend = (x2 - x1) / 2
        return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    below = max(b["y"] + BOX_H for b in blockers) + GAP_Y / 2
    above = min(b["y"] for b in blockers) - GAP_Y / 2
    middle = (y1 + y2) / 2
    lane = below if abs(below - middle) <= abs(above - middle) else above
    xa = min(b["x"] for b in blockers) - GAP_X / 2
    xb = max(b["x"] for b in blockers) + BOX_W + GAP_X / 2
    ca, cb = (x1 + xa) / 2, (xb + x2) / 2
    return (
        f"M{x1},{y1} C{ca},{y1} {ca},{lane} {xa},{lane} L{xb},{lane} "
        f"C{cb},{lane} {cb},{y2} {x2},{y2}"
    )


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def cell(ti: TaskInstance) -> dict:
    return {
        "task_id": ti.task_id,
        "state": ti.state,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "started_at": fmt_time(ti.started_at),
        "finished_at": fmt_time(ti.finished_at),
        "duration": fmt_duration(duration(ti.started_at, ti.finished_at)),
        "worker": ti.worker or "",
        "finished": ti.state in TASK_FINISHED,
    }


def run_summary(run: DagRun) -> dict:
    return {
        "run_id": run.id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": fmt_time(run.logical_date),
        "started_at": fmt_time(run.started_at),
        "finished_at": fmt_time(run.finished_at),
        "duration": fmt_duration(duration(run.started_at, run.finished_at)),
        "seconds": duration(run.started_at, run.finished_at),
        "finished": run.state in RUN_FINISHED,
    }


def grid(dag, spec: dict, limit: int = GRID_RUNS) -> dict:
    """The last ``limit`` runs (oldest first) and their task instances, keyed by run."""
    newest = DagRun.select().where(DagRun.dag == dag).order_by(DagRun.id.desc()).limit(limit)
    runs = list(newest)[::-1]
    cells: dict[int, dict] = defaultdict(dict)
    rows = TaskInstance.select().where(TaskInstance.run.in_([r.id for r in runs]))
    for ti in rows:
        cells[ti.run_id][ti.task_id] = cell(ti)
    order = task_order(spec["tasks"])
    extra = sorted({t for per_run in cells.values() for t in per_run} - set(order))
    return {
        "tasks": order + extra,
        "runs": [run_summary(r) for r in runs],
        "cells": {str(run_id): per_run for run_id, per_run in cells.items()},
    }


# Runs -------------------------------------------------------------------------------------


def task_row(ti: TaskInstance) -> dict:
    row = cell(ti)
    row.update(
        function=ti.function_version.function.name,
        function_version=ti.function_version.version,
        result=preview(ti.result),
        error=ti.error or "",
        upstream=ti.upstream,
    )
    return row


def tries(ti: TaskInstance) -> list[dict]:
    """Every try of a task instance: the finished ones kept in task_try, then the current."""
    done = {t.try_number: t for t in ti.tries.order_by(TaskTry.try_number)}
    items = []
    for number in range(1, max(ti.try_number, 1) + 1):
        row = done.get(number)
        if row is not None:
            items.append({"number": number, "state": row.state})
        else:
            items.append({"number": number, "state": ti.state if number == ti.try_number else ""})
    return items


def used_by() -> dict[str, list[str]]:
    """Function name -> the DAGs whose current version uses it (as a task or a callback)."""
    users = defaultdict(set)
    for dag, version in dags.current_versions():
        spec = version.spec
        for name in [t["function"] for t in spec["tasks"]] + [
            spec.get("on_success"),
            spec.get("on_failure"),
        ]:
            if name:
                users[name].add(dag.dag_id)
    return {name: sorted(ids) for name, ids in users.items()}


def latest_function_versions() -> list[FunctionVersion]:
    latest = {}
    for version in FunctionVersion.select().order_by(FunctionVersion.version.desc()):
        latest.setdefault(version.function_id, version)
    return sorted(latest.values(), key=lambda v: v.function.name)
