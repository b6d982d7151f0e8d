"""Deciding what runs next: start a run's root tasks, queue the successors of a finished task
by their trigger rules, and finish the run when every task is finished.

Never locks the run: each finisher commits its own state first, then reads its successors'
upstream states afresh, then moves a successor by compare-and-set, so of two finishers
racing, the one that commits last sees both and only one of them queues the successor.
"""

from datetime import datetime

from app import queue, states, trigger_rules
from app.db import db
from app.models import TaskInstance
from app.states import RunState, TaskState
from app.timeutil import utcnow

FAILED_STATES = {TaskState.FAILED, TaskState.UPSTREAM_FAILED}


def start_run(run_id: int, task_instances: list[TaskInstance]) -> None:
    """queued -> running, and queue the run's tasks that have no upstream (call inside the
    transaction that created the run: the messages go out after its commit)."""
    if not states.start_run(run_id):
        return
    for ti in task_instances:
        if not ti.upstream:
            states.queue_task(ti)


def task_finished(run_id: int, downstream: list[str]) -> None:
    """After a task's try reached a final state: decide its successors, then the run."""
    with db.atomic():
        evaluate(run_id, downstream)
    maybe_finish_run(run_id)


def evaluate(run_id: int, task_ids: list[str]) -> None:
    """Queue, skip or fail each of ``task_ids`` still waiting (state none) whose trigger rule
    can now be decided; a task decided as not to run has its own successors evaluated."""
    pending = list(task_ids)
    while pending:
        candidates = _waiting(run_id, pending)
        pending = []
        for ti in candidates:
            decision = trigger_rules.evaluate(ti.trigger_rule, _upstream_states(run_id, ti))
            if decision == "ready":
                states.queue_task(ti)
            elif decision in (TaskState.UPSTREAM_FAILED, TaskState.SKIPPED):
                if states.mark_not_run(ti, TaskState(decision)):
                    pending.extend(ti.downstream)


def _waiting(run_id: int, task_ids: list[str]):
    if not task_ids:
        return []
    return list(
        TaskInstance.select().where(
            (TaskInstance.run == run_id)
            & TaskInstance.task_id.in_(sorted(set(task_ids)))
            & (TaskInstance.state == str(TaskState.NONE))
        )
    )


def _upstream_states(run_id: int, ti: TaskInstance) -> list[str]:
    rows = TaskInstance.select(TaskInstance.state).where(
        (TaskInstance.run == run_id) & TaskInstance.task_id.in_(ti.upstream)
    )
    return [row.state for row in rows]


def maybe_finish_run(run_id: int) -> None:
    """Set the run's final state once no task is unfinished (only one finisher's CAS wins)."""
    rows = TaskInstance.select(TaskInstance.state).where(TaskInstance.run == run_id).distinct()
    task_states = {row.state for row in rows}
    if task_states & states.TASK_UNFINISHED:
        return
    failed = bool(task_states & FAILED_STATES)
    states.finish_run(run_id, RunState.FAILED if failed else RunState.SUCCESS)


def release_retry(ti_id: int, try_number: int, now: datetime | None = None) -> bool:
    """Queue a try waiting in up_for_retry once its delay has passed (a message that comes
    early schedules itself again for the right time); True if it was queued."""
    ti = TaskInstance.get_or_none(
        (TaskInstance.id == ti_id)
        & (TaskInstance.try_number == try_number)
        & (TaskInstance.state == str(TaskState.UP_FOR_RETRY))
    )
    if ti is None:
        return False
    if ti.next_try_at <= (now or utcnow()):
        return states.queue_task(ti)
    queue.schedule_retry(ti_id, try_number, ti.next_try_at)
    return False
