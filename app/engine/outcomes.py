"""Recording how a try ended: its state by compare-and-set, its history and the start of
the successors that wait for it alone in one commit, then its other successors. Shared by
the worker (a try's outcome) and the clock (a dead worker's try)."""

from app.domain.outcomes import Outcome
from app.domain.retries import retry_delay
from app.domain.states import TASK_FINISHED, TaskState
from app.domain.timeutil import utcnow
from app.engine import dispatch, metrics
from app.store import transitions
from app.store.db import Compiled, Slot, db
from app.store.models import TaskInstance, TaskTry


def record_outcome(ti: TaskInstance, try_number: int, outcome: Outcome) -> bool:
    """Finish the try by compare-and-set (a try cancelled, marked or reaped meanwhile changes
    nothing), keep its history, then dispatch its successors if the task is finished;
    returns whether this outcome was the one recorded."""
    error = outcome.error or _bad_branch(ti, outcome.branch)
    skipped: list = []
    with db.atomic():  # the new state, its history and a branch's skips: one commit
        if outcome.skipped:
            tried, moved = "skipped", transitions.skip(ti.id, try_number, outcome.error)
            finished = moved
        elif outcome.ok and error is None:
            tried, moved = "success", transitions.succeed(ti.id, try_number, outcome.result)
            finished = moved
            if moved and outcome.branch is not None:  # in this commit: see skip_not_chosen
                skipped = dispatch.skip_not_chosen(
                    ti.run_id, ti.downstream, outcome.branch, ti.task_id
                )
        else:
            delay = retry_delay(try_number, ti.retry_delay, ti.retry_backoff, ti.max_retry_delay)
            reached = transitions.fail(ti.id, try_number, ti.max_tries, error, delay)
            tried, moved = "failed", reached is not None
            finished = reached == TaskState.FAILED
        if moved:
            _keep_try(ti.id, try_number, tried, error, ti.started_at, ti.worker)
        else:
            _keep_stopped_try(ti, try_number)
        if finished:  # a successor that waits only for this task: started in this commit
            queued, waiting = dispatch.queue_sole_successors(
                ti.run_id, ti.downstream, ti.task_id, tried
            )
    # Dispatch reads the other successors' upstream states only after this commit: of two
    # upstream tasks finishing at once, the later to commit sees both (app/engine/dispatch.py).
    if finished:
        known = {ti.task_id: tried}  # success, skipped or failed: the state just committed
        rest = [task_id for task_id in ti.downstream if task_id not in queued]
        dispatch.task_finished(ti.run_id, rest, known, skipped, len(queued), waiting)
    return moved


def record_failure(ti: TaskInstance, try_number: int, error: str) -> bool:
    """Fail the task for good, with no retry: its outcome could not be recorded (the same
    fault would meet every retry). Then its successors, as for any failure."""
    with db.atomic():
        reached = transitions.fail(ti.id, try_number, try_number, error, 0.0)
        if reached is not None:
            _keep_try(ti.id, try_number, "failed", error, ti.started_at, ti.worker)
    if reached == TaskState.FAILED:
        dispatch.task_finished(ti.run_id, ti.downstream, known={ti.task_id: "failed"})
    return reached is not None


def record_handed_back(ti_id: int, try_number: int, reason: str) -> bool:
    """running -> up_for_retry without spending a retry (the worker stops, the database went
    away): the try is kept in the history as ``handed_back`` with ``reason``."""
    if not transitions.hand_back(ti_id, try_number, f"handed back: {reason}"):
        return False
    _keep_try(ti_id, try_number, "handed_back", reason, None, None)
    return True


def _keep_stopped_try(ti: TaskInstance, try_number: int) -> None:
    """A try whose task instance was finished by someone else while it ran (cancelled,
    marked, its run timed out): kept in the history as that state, ended now (its process is
    gone), unless its end is there already (a reaped try)."""
    now = _ON_TRY.first(ti_id=ti.id, try_number=try_number)
    if now is None or now.state not in TASK_FINISHED:
        return
    if TaskTry.get_or_none(task_instance=ti.id, try_number=try_number) is not None:
        return
    error = f"stopped: {now.error or f'the task instance was {now.state}'}"
    _keep_try(ti.id, try_number, now.state, error, ti.started_at, ti.worker)


_ON_TRY = Compiled(
    lambda: TaskInstance.select(TaskInstance.state, TaskInstance.error).where(
        (TaskInstance.id == Slot("ti_id")) & (TaskInstance.try_number == Slot("try_number"))
    )
)


def _keep_try(ti_id, try_number, tried, error, started_at, worker) -> None:
    """Add the try to the history (``tried``: how it ended, a TaskTry state)."""
    values = dict(ti_id=ti_id, try_number=try_number, tried=tried, error=error)
    finished_at = utcnow()
    _KEEP_TRY.rowcount(**values, started_at=started_at, finished_at=finished_at, worker=worker)
    metrics.observe_try(ti_id, started_at, finished_at)  # counted with the try, once


_KEEP_TRY = Compiled(
    lambda: TaskTry.insert(
        task_instance=Slot("ti_id", TaskTry.task_instance),
        try_number=Slot("try_number", TaskTry.try_number),
        state=Slot("tried", TaskTry.state),
        started_at=Slot("started_at", TaskTry.started_at),
        finished_at=Slot("finished_at", TaskTry.finished_at),
        worker=Slot("worker", TaskTry.worker),
        error=Slot("error", TaskTry.error),
    )
)


def _bad_branch(ti: TaskInstance, branch) -> str | None:
    unknown = sorted(set(branch or ()) - set(ti.downstream))
    if unknown:
        return f"branch chose {unknown}, which are not downstream of {ti.task_id!r}"
    return None
