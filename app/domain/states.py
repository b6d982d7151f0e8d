"""The states of runs and task instances, their groups and the legal transitions: pure rules.

As Airflow's ``TaskInstanceState`` and ``DagRunState``; ``none`` is a task instance not yet
queued. The store's transitions module (app/store/transitions.py) is the only writer of a
``state`` column and checks every move against ``TASK_TRANSITIONS`` / ``RUN_TRANSITIONS``.
"""

from enum import StrEnum


class TaskState(StrEnum):
    NONE = "none"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


T, R = TaskState, RunState
TASK_FINISHED = frozenset({T.SUCCESS, T.FAILED, T.UPSTREAM_FAILED, T.SKIPPED, T.CANCELLED})
TASK_UNFINISHED = frozenset(set(T) - TASK_FINISHED)
RUN_FINISHED = frozenset({R.SUCCESS, R.FAILED, R.CANCELLED})

TASK_TRANSITIONS = frozenset(
    {
        (T.NONE, T.QUEUED),
        (T.UP_FOR_RETRY, T.QUEUED),
        (T.QUEUED, T.RUNNING),
        (T.RUNNING, T.SUCCESS),
        (T.RUNNING, T.FAILED),
        (T.RUNNING, T.UP_FOR_RETRY),
        (T.RUNNING, T.SKIPPED),  # the function skipped itself
        (T.NONE, T.UPSTREAM_FAILED),
        (T.NONE, T.SKIPPED),
    }
    | {(state, T.CANCELLED) for state in TASK_UNFINISHED}
    | {(state, T.NONE) for state in TASK_FINISHED}  # clear
    | {(state, T.FAILED) for state in TASK_UNFINISHED}  # dagrun_timeout, mark failed
    | {(state, mark) for state in T for mark in (T.SUCCESS, T.FAILED) if state != mark}  # mark
)
RUN_TRANSITIONS = frozenset(
    {
        (R.QUEUED, R.RUNNING),
        (R.RUNNING, R.SUCCESS),
        (R.RUNNING, R.FAILED),
        (R.QUEUED, R.CANCELLED),
        (R.RUNNING, R.CANCELLED),
    }
    | {(state, R.RUNNING) for state in RUN_FINISHED}  # clear
)


class IllegalTransition(ValueError):
    pass
