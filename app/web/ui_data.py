"""Read-only queries and shaping for the web UI: what each page and its polling show.

Each request reads what its page shows, whatever the history kept and in as many statements
for 30 DAGs as for 3: the DAGs page each DAG's RECENT_RUNS last runs, by index; a DAG's page
its GRID_RUNS newest runs, and on the grid tab the shown columns of their task instances; a
grid poll only the runs changed since the cursor its last answer gave (``grid``)."""

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

import peewee

from app.domain.timeutil import utcnow
from app.engine import dags
from app.store.db import db, is_postgres
from app.store.models import (
    Dag,
    DagRun,
    DagVersion,
    Function,
    FunctionVersion,
    TaskInstance,
    TaskTry,
)
from app.store.transitions import RUN_FINISHED, TASK_FINISHED

RECENT_RUNS = 12  # squares per DAG on the DAGs page
GRID_RUNS = 25  # columns in a DAG's grid
PREVIEW_CHARS = 240
MAX_CURSOR_CHARS = 4096  # a longer grid cursor is none (GRID_RUNS stamps take ~600)
EPOCH, MICROSECOND = datetime(1970, 1, 1), timedelta(microseconds=1)

# Graph geometry, in SVG user units.
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 168, 46, 64, 18, 12


def fmt_time(value) -> str:
    """A naive UTC time as "2025-01-31 09:05:00" (isoformat: 5,000 of a grid's cells quickly)."""
    return value.isoformat(" ", "seconds") if value else ""


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


class RecentRun(NamedTuple):
    """What a square on the DAGs page shows of a run."""

    id: int
    dag_id: int
    state: str
    run_type: str
    logical_date: datetime


def recent_runs(limit: int = RECENT_RUNS) -> dict[int, list[RecentRun]]:
    """The last ``limit`` runs of every DAG, oldest first, by the DAG's key: one query that
    reads ``limit`` entries of dag_run's (dag_id, id) index per DAG, however many runs are
    kept. Rows as the driver gives them (peewee's models of 1,200 rows took longer than the
    rest of the page), the time as ``cells`` reads it."""
    columns = (DagRun.id, DagRun.dag, DagRun.state, DagRun.run_type, DagRun.logical_date)
    query = DagRun.select(*columns).where(DagRun.id.in_(_last_run_ids(limit)))
    as_time = DagRun.logical_date.python_value
    by_dag = defaultdict(list)
    for run_id, dag_pk, state, run_type, logical_date in db.execute(query.order_by(DagRun.id)):
        by_dag[dag_pk].append(RecentRun(run_id, dag_pk, state, run_type, as_time(logical_date)))
    return by_dag


def _last_run_ids(limit: int) -> peewee.SelectQuery:
    """A subquery of the ids of each DAG's last ``limit`` runs. Postgres: a LATERAL join of
    each DAG to its newest runs. SQLite (no LATERAL): each DAG's ``limit``-th newest run,
    found by the index, starts a range of the index; a CROSS JOIN keeps SQLite's loop order
    (DAGs outside), which that range needs."""
    each_dag = Dag.alias("each_dag")
    if is_postgres():
        newest = DagRun.select(DagRun.id).where(DagRun.dag == each_dag.id)
        newest = newest.order_by(DagRun.id.desc()).limit(limit).alias("newest")
        return each_dag.select(newest.c.id).join(newest, peewee.JOIN.LATERAL)
    run, oldest = DagRun.alias("run"), DagRun.alias("oldest")
    first = oldest.select(oldest.id).where(oldest.dag == each_dag.id)
    first = first.order_by(oldest.id.desc()).limit(1).offset(limit - 1)
    within = (run.dag == each_dag.id) & (run.id >= peewee.fn.COALESCE(first, 0))
    return each_dag.select(run.id).join(run, peewee.JOIN.CROSS).where(within)


def run_square(run: RecentRun) -> dict:
    return {
        "run_id": run.id,
        "state": run.state,
        "title": f"run {run.id} · {run.run_type} · {run.state} · {fmt_time(run.logical_date)}",
    }


def dag_row(dag: Dag, version: DagVersion, last: DagRun | RecentRun | None) -> dict:
    """What the DAGs page and a DAG's page show of the DAG; ``last`` is its newest run."""
    spec = version.spec
    return {
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
    }


def dag_rows() -> list[dict]:
    """One dict per DAG for the DAGs page and its polling: ``dag_row`` and the squares of its
    RECENT_RUNS last runs (``runs``). Two queries, whatever the number of DAGs and runs."""
    runs = recent_runs()
    rows = []
    for dag, version in dags.current_versions():
        recent = runs.get(dag.id, [])
        row = dag_row(dag, version, recent[-1] if recent else None)
        rows.append({**row, "runs": [run_square(r) for r in recent]})
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
    every arrow points right. Specs are validated acyclic; unknown upstream ids are ignored.
    Each task is laid once its upstreams are (Kahn's order): linear in tasks and arrows."""
    upstream = {t["task_id"]: [] for t in tasks}
    downstream = defaultdict(list)
    for task in tasks:
        for up in task.get("upstream", []):
            if up in upstream:
                upstream[task["task_id"]].append(up)
                downstream[up].append(task["task_id"])
    waiting = {task_id: len(ups) for task_id, ups in upstream.items()}
    ready = [task_id for task_id, count in waiting.items() if count == 0]
    layer: dict[str, int] = {}
    for task_id in ready:  # grows while it is walked
        layer[task_id] = 1 + max((layer[u] for u in upstream[task_id]), default=-1)
        for down in downstream[task_id]:
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    last = max(layer.values(), default=-1)
    for task_id in upstream:  # a cycle cannot be stored; lay out what is left in one column
        layer.setdefault(task_id, last + 1)
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


# A DAG's grid: its newest runs by its tasks, and what changed of it since a poll ----------


# What a run's summary and the grid's cursor show of it (not its conf or trigger).
RUN_COLUMNS = (
    DagRun.id,
    DagRun.dag,
    DagRun.dag_version,
    DagRun.state,
    DagRun.run_type,
    DagRun.logical_date,
    DagRun.started_at,
    DagRun.finished_at,
)


def window(dag: Dag, limit: int = GRID_RUNS) -> list[DagRun]:
    """The DAG's newest ``limit`` runs, oldest first: RUN_COLUMNS, by dag_run's (dag_id, id)
    index."""
    newest = DagRun.select(*RUN_COLUMNS).where(DagRun.dag == dag).order_by(DagRun.id.desc())
    return list(newest.limit(limit))[::-1]


def grid(version: DagVersion, runs: list[DagRun], cursor: str | None = None) -> dict:
    """The grid of ``runs`` (``window``), as much of it as the client that holds ``cursor``
    lacks. A run is sent unless the cursor holds its stamp (``stamp``: unfinished runs are
    always sent); the task list unless the cursor holds its key; with no cursor, or one this
    code did not write, everything. The answer:

    {"run_ids": [the id of every run, oldest first],
     "runs": [run_summary of each run sent],
     "cells": {str(run id): {task_id: grid_cell}, for each run sent},
     "tasks": [the rows' task ids] (absent when the client's are these),
     "cursor": what the client holds once it merged this answer}

    Queries: the cells of the runs sent (none when none is), and the task ids of runs of
    other versions when the task list is sent and such runs are shown."""
    key, stamps = read_cursor(cursor)
    sent = [r for r in runs if stamp(r) is None or stamps.get(r.id) != stamp(r)]
    answer = {
        "run_ids": [r.id for r in runs],
        "runs": [run_summary(r) for r in sent],
        "cells": cells([r.id for r in sent]),
        "cursor": cursor_of(version, runs),
    }
    if key != tasks_key(version, runs):
        answer["tasks"] = grid_tasks(version, runs)
    return answer


def stamp(run: DagRun) -> str | None:
    """A finished run's stamp: when it finished, in microseconds since the epoch, in hex.
    A finished run changes only once reopened (app/store/transitions.py ``reopen_run``
    clears finished_at), and gets a new finished_at when it finishes again: its summary and
    cells changed if and only if its stamp did. None for a run not finished."""
    if run.state not in RUN_FINISHED or run.finished_at is None:
        return None
    return format((run.finished_at - EPOCH) // MICROSECOND, "x")


def tasks_key(version: DagVersion, runs: list[DagRun]) -> str:
    """Which versions the grid's rows come from: the current one, then, in order, those of
    the runs shown (their task instances), as dotted ids: "41" or "41.38.40"."""
    others = sorted({r.dag_version_id for r in runs if r.dag_version_id} - {version.id})
    return ".".join(str(number) for number in [version.id, *others])


def cursor_of(version: DagVersion, runs: list[DagRun]) -> str:
    """The cursor of a client that holds the grid of ``runs``: the tasks key, a slash, then
    "run id:stamp" of each finished run, comma-separated ("41/1207:63a1f0c2b9e10,1208:...")."""
    held = ",".join(f"{r.id}:{stamp(r)}" for r in runs if stamp(r) is not None)
    return f"{tasks_key(version, runs)}/{held}"


def read_cursor(text: str | None) -> tuple[str, dict[int, str]]:
    """The tasks key and the stamps by run id of a cursor (``cursor_of``); ("", {}), which
    matches nothing, for none, or one this code did not write."""
    if not text or len(text) > MAX_CURSOR_CHARS:
        return "", {}
    key, _, held = text.partition("/")
    try:
        stamps = {int(run_id): value for run_id, value in _pairs(held)}
    except ValueError:
        return "", {}
    return key, stamps


def _pairs(held: str):
    for item in filter(None, held.split(",")):
        run_id, value = item.split(":")  # ValueError unless exactly one colon
        yield run_id, value


def cells(run_ids: list[int]) -> dict[str, dict[str, dict]]:
    """The grid's cells of those runs, {str(run id): {task_id: grid_cell}}, every run keyed
    even without task instances: one query of the columns shown (no JSON column)."""
    found: dict[str, dict[str, dict]] = {str(run_id): {} for run_id in run_ids}
    if not run_ids:
        return found
    query = TaskInstance.select(*CELL_COLUMNS).where(TaskInstance.run.in_(run_ids))
    as_time = TaskInstance.started_at.python_value  # SQLite's text; Postgres's as it comes
    # Rows as the driver gives them: peewee's converters of every column of 5,000 rows
    # took as long as the cells.
    for run_id, task_id, state, try_number, started, finished, worker in db.execute(query):
        cell = grid_cell(state, try_number, as_time(started), as_time(finished), worker)
        found[str(run_id)][task_id] = cell
    return found


# A task instance as a grid's square shows it, then its details (in this order).
CELL_COLUMNS = (
    TaskInstance.run,
    TaskInstance.task_id,
    TaskInstance.state,
    TaskInstance.try_number,
    TaskInstance.started_at,
    TaskInstance.finished_at,
    TaskInstance.worker,
)


def grid_cell(state: str, try_number: int, started_at, finished_at, worker) -> dict:
    return {
        "state": state,
        "try_number": try_number,
        "started_at": fmt_time(started_at),
        "finished_at": fmt_time(finished_at),
        "duration": fmt_duration(duration(started_at, finished_at)),
        "worker": worker or "",
    }


def grid_tasks(version: DagVersion, runs: list[DagRun]) -> list[str]:
    """The grid's rows: the current version's tasks (``task_order``), then, sorted, those
    that only runs of other versions have (one query of their task ids, if any is shown)."""
    order = task_order(version.spec["tasks"])
    older = [r.id for r in runs if r.dag_version_id != version.id]
    if not older:
        return order
    query = TaskInstance.select(TaskInstance.task_id).distinct()
    task_ids = {task_id for (task_id,) in query.where(TaskInstance.run.in_(older)).tuples()}
    return order + sorted(task_ids - set(order))


def graph_runs(version: DagVersion, runs: list[DagRun], run_id: int | None) -> dict:
    """What a DAG's graph tab colours its boxes by: the cells of run ``run_id`` (by default
    the newest of ``runs``), with the runs to choose from and the cursor of a client that
    holds every run shown (the page shows the one run it needs; its polls, answered by
    ``grid``, then bring only the runs that changed): one query.

    {"runs": [run_summary of each of ``runs``], "run_id": the run shown or None,
     "cells": {task_id: grid_cell}, "cursor": ``cursor_of``}"""
    shown = run_id or (runs[-1].id if runs else None)
    return {
        "runs": [run_summary(r) for r in runs],
        "run_id": shown,
        "cells": cells([shown])[str(shown)] if shown else {},
        "cursor": cursor_of(version, runs),
    }


def dag_versions(dag: Dag) -> list[DagVersion]:
    """The DAG's versions, newest first: their numbers and times, not their specs."""
    query = dag.versions.select(DagVersion.id, DagVersion.version, DagVersion.created_at)
    return list(query.order_by(DagVersion.version.desc()))


# Runs -------------------------------------------------------------------------------------


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
    """The newest version of every function, by the function's name, with that name: one
    query, of the columns the functions page shows (not the source, lock or build log)."""
    newest = FunctionVersion.alias("newest")
    latest = newest.select(peewee.fn.MAX(newest.version)).where(newest.function == Function.id)
    shown = (FunctionVersion.id, FunctionVersion.version, FunctionVersion.handler)
    shown += (FunctionVersion.timeout, FunctionVersion.memory_mb, FunctionVersion.created_at)
    query = FunctionVersion.select(*shown, Function.id, Function.name).join(Function)
    return list(query.where(FunctionVersion.version == latest).order_by(Function.name))


def function_versions(function: Function) -> list[FunctionVersion]:
    """The function's versions, newest first: their numbers and times, not their sources."""
    columns = (FunctionVersion.id, FunctionVersion.version, FunctionVersion.created_at)
    query = function.versions.select(*columns)
    return list(query.order_by(FunctionVersion.version.desc()))
