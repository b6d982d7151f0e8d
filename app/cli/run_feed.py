"""What ``make run`` shows of the runs (app/cli/devserver.py): a line per failed try and per
finished run, read from the metadata database on the dev server's own connection, so the
terminal says what happened without the processes' per-task log lines.

`RunFeed.poll()` returns the lines since the previous poll; what finished before the feed
started is not shown. Ids grow with each insert (AUTOINCREMENT on SQLite, where one writer
commits at a time); on Postgres a transaction may commit after one that took a later id, so
each poll looks back ``LOOK_BACK`` ids and skips what it has shown.
"""

from dataclasses import dataclass

import peewee

from app.domain.states import RUN_FINISHED, RunState
from app.store.models import Dag, DagRun, Function, TaskInstance, TaskTry

LOOK_BACK = 200  # ids below the highest seen that a poll reads again (Postgres commit order)
TRIES_SHOWN = ("failed", "handed_back")  # TaskTry states worth a line; success is the run's
UNFINISHED = (RunState.QUEUED, RunState.RUNNING)


@dataclass(frozen=True)
class FeedLine:
    text: str
    colour: str  # a key of app/cli/terminal.py's COLOURS: the state the line reports


class _Ids:
    """The rows of one table a poll reads: above the highest id when the feed started, and
    at most LOOK_BACK below the highest it has read since."""

    def __init__(self, model):
        self.start = self.high = model.select(peewee.fn.MAX(model.id)).scalar() or 0

    def floor(self) -> int:
        return max(self.start, self.high - LOOK_BACK)

    def saw(self, row_id: int) -> None:
        self.high = max(self.high, row_id)


class RunFeed:
    """Call on a connected database (app/store/db.py's proxy, bound)."""

    def __init__(self):
        self.tries, self.runs = _Ids(TaskTry), _Ids(DagRun)
        self.shown_tries: set[int] = set()
        self.shown_runs: dict[int, object] = {}  # run id -> the finished_at its line showed
        self.watched = self._unfinished()  # runs that may finish before the next poll

    def poll(self) -> list[FeedLine]:
        return self._failed_tries() + self._finished_runs()

    def _failed_tries(self) -> list[FeedLine]:
        floor = self.tries.floor()
        rows = list(
            TaskTry.select(TaskTry, TaskInstance, DagRun, Dag, Function)
            .join(TaskInstance)
            .join(DagRun)
            .join(Dag, peewee.JOIN.LEFT_OUTER)
            .switch(DagRun)
            .join(Function, peewee.JOIN.LEFT_OUTER)
            .where(TaskTry.id > floor, TaskTry.state.in_(TRIES_SHOWN))
            .order_by(TaskTry.id)
        )
        lines = [try_line(row) for row in rows if row.id not in self.shown_tries]
        for row in rows:
            self.tries.saw(row.id)
        self.shown_tries = {row.id for row in rows}  # what a later poll reads again
        return lines

    def _finished_runs(self) -> list[FeedLine]:
        unfinished = self._unfinished()
        floor, lines = self.runs.floor(), []
        again = sorted(self.watched - unfinished)  # finished (or deleted) since the last poll
        rows = list(
            DagRun.select(DagRun, Dag, Function)
            .join(Dag, peewee.JOIN.LEFT_OUTER)
            .switch(DagRun)
            .join(Function, peewee.JOIN.LEFT_OUTER)
            .where((DagRun.id > floor) | DagRun.id.in_(again))
            .order_by(DagRun.finished_at, DagRun.id)
        )
        for row in rows:
            self.runs.saw(row.id)
            if row.state in RUN_FINISHED and self.shown_runs.get(row.id) != row.finished_at:
                lines.append(run_line(row))
                self.shown_runs[row.id] = row.finished_at
        floor = self.runs.floor()
        self.shown_runs = {i: at for i, at in self.shown_runs.items() if i > floor}
        self.watched = unfinished
        return lines

    @staticmethod
    def _unfinished() -> set[int]:
        return {row.id for row in DagRun.select(DagRun.id).where(DagRun.state.in_(UNFINISHED))}


def run_line(run: DagRun) -> FeedLine:
    """run 7 example_pipeline (manual): success in 1.42s"""
    took = ""
    if run.started_at and run.finished_at:
        took = f" in {(run.finished_at - run.started_at).total_seconds():.2f}s"
    hint = f" (python -m app runs show {run.id})" if run.state == RunState.FAILED else ""
    text = f"run {run.id} {_what(run)} ({run.run_type}): {run.state}{took}{hint}"
    return FeedLine(text, run.state)


def try_line(row: TaskTry) -> FeedLine:
    """run 8 example_failure: boom try 1/1 failed: RuntimeError: ..."""
    ti = row.task_instance
    retried = row.state == "handed_back" or row.try_number < ti.max_tries
    outcome = {"handed_back": "handed back"}.get(row.state, row.state)
    outcome += ", to be retried" if retried and row.state == "failed" else ""
    error = (row.error or "").strip().splitlines()
    text = f"run {ti.run.id} {_what(ti.run)}: {ti.task_id} try {row.try_number}/{ti.max_tries}"
    text += f" {outcome}" + (f": {error[0][:200]}" if error else "")
    return FeedLine(text, "up_for_retry" if retried else "failed")


def _what(run: DagRun) -> str:
    if run.dag_id is not None:
        return run.dag.dag_id
    return f"function {run.function.name}" if run.function_id is not None else "(deleted)"
