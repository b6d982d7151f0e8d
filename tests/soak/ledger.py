"""The soak's verdict, computed from what happened, never assumed: the database's runs and task
instances, the ledger file of executions (one ``run task try`` line each time the function
starts), what the callback receiver got, and what each sender was answered.

- lost: an answered submission whose run is missing or never finished, any run still
  unfinished, a task recorded as a success whose try never ran, a finished invoke whose
  callback never came;
- duplicated: a try that ran more than once, or outside its claim (a try number the task
  instance never reached), a webhook delivery with more than one run;
- failed: a run that finished in another state than success (its tries ran out);
- extra runs: a run made by a resend of a request whose answer was cut (a trigger or invoke
  carries no idempotency key: the sender made two requests, not the system two runs).
"""

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.domain.states import RUN_FINISHED
from app.store import db
from app.store.models import DagRun, TaskInstance

Execution = tuple[int, str, int]  # run_id, task_id, try_number


@dataclass(frozen=True)
class Run:
    id: int
    soak: int | None  # the submission it came from ({"soak": n} in its conf)
    state: str
    finished_at: float | None  # unix time
    callback: bool  # an async invoke with a callback_url


@dataclass(frozen=True)
class Task:
    run_id: int
    task_id: str
    state: str
    try_number: int


@dataclass
class Figures:
    """One workload's row of the table. In the callbacks' row, ``runs`` are the finished
    runs with a callback_url, ``answered`` those called back, ``extra_runs`` the deliveries
    repeated."""

    kind: str
    answered: int = 0  # submissions the system answered with a run
    unanswered: int = 0  # submissions never answered before the deadline
    runs: int = 0  # runs in the database made by them
    tasks: int = 0
    executions: int = 0  # tries the function ran (ledger lines)
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    extra_runs: int = 0
    problems: list[str] = field(default_factory=list)  # each loss or duplicate, said


def unix(value: datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=UTC).timestamp()


def load_runs() -> list[Run]:
    with db.db.connection_context():
        rows = DagRun.select(
            DagRun.id, DagRun.conf, DagRun.state, DagRun.finished_at, DagRun.callback_url
        )
        return [
            Run(
                row.id,
                row.conf.get("soak") if isinstance(row.conf, dict) else None,
                row.state,
                unix(row.finished_at),
                bool(row.callback_url),
            )
            for row in rows
        ]


def load_tasks() -> list[Task]:
    with db.db.connection_context():
        rows = TaskInstance.select(
            TaskInstance.run, TaskInstance.task_id, TaskInstance.state, TaskInstance.try_number
        ).tuples()
        return [Task(*row) for row in rows]


def read_executions(path: Path) -> collections.Counter[Execution]:
    """How many times each (run, task, try) started, from the ledger file."""
    if not path.exists():
        return collections.Counter()
    executions: collections.Counter[Execution] = collections.Counter()
    for line in path.read_text().splitlines():
        run_id, task_id, try_number = line.split()
        executions[(int(run_id), task_id, int(try_number))] += 1
    return executions


def check_kind(kind, submissions, runs: list[Run], tasks: list[Task], executions) -> Figures:
    """The figures of one workload: its submissions (load.Submission), the runs they made,
    those runs' task instances and the executions of those runs."""
    figures = Figures(kind)
    by_id = {run.id: run for run in runs}
    _answers(figures, submissions, by_id, runs)
    for run in runs:
        if run.state not in RUN_FINISHED:
            figures.lost += 1
            figures.problems.append(f"run {run.id} ({kind}) never finished: {run.state}")
        elif run.state != "success":
            figures.failed += 1
            figures.problems.append(f"run {run.id} ({kind}): {_ended(run)}")
    _tries(figures, tasks, executions)
    figures.runs, figures.tasks = len(runs), len(tasks)
    return figures


def _answers(figures: Figures, submissions, by_id: dict[int, Run], runs: list[Run]) -> None:
    made = collections.Counter(run.soak for run in runs)
    for submission in submissions:
        if submission.run_id is None:
            figures.unanswered += submission.sent > 0
            figures.extra_runs += made[submission.n]
            continue
        figures.answered += 1
        if submission.run_id not in by_id:
            figures.lost += 1
            figures.problems.append(f"{submission}: answered, but its run is not stored")
        if submission.kind == "webhook":
            _one_run_per_delivery(figures, submission, made[submission.n])
        else:
            figures.extra_runs += max(made[submission.n] - 1, 0)


def _one_run_per_delivery(figures: Figures, submission, made: int) -> None:
    repeat = submission.repeat_run_id
    if made > 1 or (repeat is not None and repeat != submission.run_id):
        figures.duplicated += max(made - 1, 1)
        figures.problems.append(f"{submission}: the delivery made {made} runs")


def _tries(figures: Figures, tasks: list[Task], executions) -> None:
    """Each try ran at most once and within the claims its task instance recorded; a success
    ran."""
    reached = {(task.run_id, task.task_id): task.try_number for task in tasks}
    for (run_id, task_id, try_number), count in executions.items():
        figures.executions += count
        if count > 1:
            figures.duplicated += count - 1
            figures.problems.append(f"run {run_id} task {task_id} try {try_number} ran {count}x")
        if try_number > reached.get((run_id, task_id), 0):
            figures.duplicated += 1
            figures.problems.append(
                f"run {run_id} task {task_id} try {try_number} ran, never claimed"
            )
    for task in tasks:
        if task.state == "success" and not executions.get(
            (task.run_id, task.task_id, task.try_number)
        ):
            figures.lost += 1
            figures.problems.append(f"{task}: a success that never ran")


def _ended(run: Run) -> str:
    """'success at 02:58:01.234 UTC': to read beside the CHAOS: lines of the processes' log."""
    if run.finished_at is None:
        return run.state
    at = datetime.fromtimestamp(run.finished_at, UTC).strftime("%H:%M:%S.%f")[:-3]
    return f"{run.state} at {at} UTC"


def check_callbacks(runs: list[Run], deliveries: Iterable[tuple]) -> Figures:
    """Every finished run with a callback_url was called back at least once (each attempt
    carries the webhook-id ``brisa-run-<id>``, so repeats are the receiver's to drop: counted
    in ``extra_runs`` of this row, not as duplicates) with its final state."""
    figures = Figures("callbacks")
    received: dict[int, list[str]] = collections.defaultdict(list)
    for _at, webhook_id, run_id, state in deliveries:
        assert webhook_id == f"brisa-run-{run_id}", (webhook_id, run_id)
        received[run_id].append(state)
    for run in runs:
        if not run.callback or run.state not in RUN_FINISHED:
            continue
        figures.runs += 1
        states = received.get(run.id, [])
        figures.answered += bool(states)
        figures.extra_runs += max(len(states) - 1, 0)
        if not states:
            figures.lost += 1
            figures.problems.append(f"run {run.id} ({_ended(run)}) was never called back")
        elif run.state not in states:
            figures.lost += 1
            figures.problems.append(f"run {run.id} ({_ended(run)}) called back with {states}")
    return figures


def check(submissions, runs: list[Run], tasks: list[Task], executions, deliveries) -> list:
    """A Figures per workload kind (in the order first submitted; "unknown" for runs and
    executions no submission explains), then the callbacks'."""
    kind_of = {s.n: s.kind for s in submissions}
    run_kind = {run.id: kind_of.get(run.soak, "unknown") for run in runs}
    kinds = list(dict.fromkeys(s.kind for s in submissions))
    found = set(run_kind.values()) | {run_kind.get(run_id, "unknown") for run_id, *_ in executions}
    if "unknown" in found:
        kinds.append("unknown")
    rows = []
    for kind in kinds:
        rows.append(
            check_kind(
                kind,
                [s for s in submissions if s.kind == kind],
                [run for run in runs if run_kind[run.id] == kind],
                [task for task in tasks if run_kind.get(task.run_id) == kind],
                {k: n for k, n in executions.items() if run_kind.get(k[0], "unknown") == kind},
            )
        )
    rows.append(check_callbacks(runs, deliveries))
    return rows


def drain_seconds(runs: list[Run], deliveries, since: float) -> float | None:
    """From ``since`` (unix: the chaos stopped) to the last run finished or callback
    received; None while a run is unfinished."""
    if any(run.finished_at is None for run in runs):
        return None
    last = max([run.finished_at for run in runs] + [at for at, *_ in deliveries], default=since)
    return max(last - since, 0.0)
