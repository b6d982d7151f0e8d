"""The soak's verdict (tests/soak/ledger.py) finds each kind of loss and duplicate it claims
to: on made-up ledgers, since a real one comes only from ``make soak``."""

from collections import Counter

from tests.soak.ledger import Run, Task, check, drain_seconds
from tests.soak.load import Submission

DONE_AT = 1000.0


def chain_of_one(n: int = 0, run_id: int = 1, state: str = "success"):
    """A submission answered with run ``run_id``, its run, its one task, and one execution."""
    submission = Submission(n, "chain", run_id=run_id, sent=1)
    finished = DONE_AT if state in ("success", "failed") else None
    run = Run(run_id, n, state, finished, callback=False)
    task = Task(run_id, "t0", "success" if state == "success" else state, 1)
    return submission, run, task, Counter({(run_id, "t0", 1): 1})


def verdict(submissions, runs, tasks, executions, deliveries=()):
    *workloads, callbacks = check(submissions, runs, tasks, executions, list(deliveries))
    totals = {
        "lost": sum(row.lost for row in workloads),
        "duplicated": sum(row.duplicated for row in workloads),
        "failed": sum(row.failed for row in workloads),
        "extra": sum(row.extra_runs for row in workloads),
    }
    return totals, callbacks


def test_a_clean_ledger_has_nothing_lost_or_twice():
    submission, run, task, executions = chain_of_one()
    totals, _ = verdict([submission], [run], [task], executions)
    assert totals == {"lost": 0, "duplicated": 0, "failed": 0, "extra": 0}


def test_a_try_that_ran_twice_is_duplicated():
    submission, run, task, executions = chain_of_one()
    executions[(1, "t0", 1)] += 1
    assert verdict([submission], [run], [task], executions)[0]["duplicated"] == 1


def test_a_try_past_the_claimed_ones_is_duplicated():
    submission, run, task, executions = chain_of_one()
    executions[(1, "t0", 2)] += 1
    assert verdict([submission], [run], [task], executions)[0]["duplicated"] == 1


def test_an_answered_run_not_stored_an_unfinished_run_and_a_success_that_never_ran_are_lost():
    stored, run, task, executions = chain_of_one(n=0, run_id=1)
    vanished = Submission(1, "chain", run_id=2, sent=1)
    stuck, stuck_run, stuck_task, stuck_executions = chain_of_one(n=2, run_id=3, state="running")
    never_ran, ran_run, ran_task, _ = chain_of_one(n=3, run_id=4)
    totals, _ = verdict(
        [stored, vanished, stuck, never_ran],
        [run, stuck_run, ran_run],
        [task, stuck_task, ran_task],
        executions + stuck_executions,
    )
    assert totals["lost"] == 3


def test_a_failed_run_is_failed_not_lost():
    submission, run, task, executions = chain_of_one(state="failed")
    assert verdict([submission], [run], [task], executions)[0] == {
        "lost": 0,
        "duplicated": 0,
        "failed": 1,
        "extra": 0,
    }


def test_a_resent_trigger_makes_an_extra_run_and_a_redelivered_webhook_a_duplicate():
    submission, run, task, executions = chain_of_one()
    resent = Run(2, 0, "success", DONE_AT, callback=False)
    hook = Submission(1, "webhook", run_id=3, repeat_run_id=4, sent=2)
    hook_runs = [Run(3, 1, "success", DONE_AT, False), Run(4, 1, "success", DONE_AT, False)]
    totals, _ = verdict([submission, hook], [run, resent, *hook_runs], [task], executions)
    assert (totals["extra"], totals["duplicated"]) == (1, 1)


def test_a_callback_never_delivered_is_lost_and_a_repeat_is_not_a_duplicate():
    runs = [Run(run_id, run_id, "success", DONE_AT, callback=True) for run_id in (1, 2)]
    submissions = [Submission(n, "callback", run_id=n, sent=1) for n in (1, 2)]
    delivered = [(DONE_AT + 1, "brisa-run-1", 1, "success")] * 2
    _, callbacks = verdict(submissions, runs, [], Counter(), delivered)
    assert (callbacks.runs, callbacks.answered, callbacks.lost, callbacks.extra_runs) == (
        2,
        1,
        1,
        1,
    )


def test_the_drain_ends_at_the_last_run_or_callback_and_not_while_a_run_is_unfinished():
    finished = [Run(1, 0, "success", DONE_AT, False), Run(2, 1, "success", DONE_AT + 2, False)]
    assert drain_seconds(finished, [(DONE_AT + 5, "brisa-run-1", 1, "x")], DONE_AT) == 5
    assert drain_seconds([*finished, Run(3, 2, "running", None, False)], [], DONE_AT) is None
