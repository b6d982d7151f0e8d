"""Airflow trigger rules: decide from its upstreams' states whether a task may run.

`evaluate` returns one of:

- ``"ready"``: the rule is satisfied; queue the task now.
- ``"wait"``: not decidable yet; look again when an upstream changes state.
- ``"upstream_failed"``: the rule can no longer be met because an upstream failed;
  mark the task ``upstream_failed`` without running it.
- ``"skipped"``: the rule can no longer be met for another reason (an upstream was
  skipped or cancelled, or the rule wanted failures and got successes); mark it ``skipped``.

As in Airflow, a verdict is given as soon as it is certain, even while other upstreams
are still running. Cancelled upstreams count as finished and as neither success nor
failure, i.e. like skipped ones, except for ``none_skipped`` where only a skip counts.
"""

from dataclasses import dataclass

TRIGGER_RULES = (  # Airflow's, by name
    "all_success",
    "all_failed",
    "all_done",
    "one_success",
    "one_failed",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
)

FINISHED = frozenset({"success", "failed", "upstream_failed", "skipped", "cancelled"})

# The decisions a rule makes about a waiting task.
READY = "ready"
WAIT = "wait"
UPSTREAM_FAILED = "upstream_failed"
SKIPPED = "skipped"


@dataclass(frozen=True)
class _Tally:
    success: bool  # at least one upstream succeeded
    failed: bool  # at least one failed or upstream_failed
    skipped: bool  # at least one skipped
    cancelled: bool  # at least one cancelled
    all_success: bool
    all_failed: bool
    all_done: bool

    @classmethod
    def of(cls, states):
        failed = [s in ("failed", "upstream_failed") for s in states]
        return cls(
            success="success" in states,
            failed=any(failed),
            skipped="skipped" in states,
            cancelled="cancelled" in states,
            all_success=all(s == "success" for s in states),
            all_failed=all(failed),
            all_done=all(s in FINISHED for s in states),
        )


def _all_success(t):
    if t.failed:
        return UPSTREAM_FAILED
    if t.skipped or t.cancelled:
        return SKIPPED
    return READY if t.all_success else WAIT


def _all_failed(t):
    if t.success or t.skipped or t.cancelled:
        return SKIPPED
    return READY if t.all_failed else WAIT


def _all_done(t):
    return READY if t.all_done else WAIT


def _one_success(t):
    if t.success:
        return READY
    if not t.all_done:
        return WAIT
    return UPSTREAM_FAILED if t.failed else SKIPPED


def _one_failed(t):
    if t.failed:
        return READY
    return SKIPPED if t.all_done else WAIT


def _none_failed(t):
    if t.failed:
        return UPSTREAM_FAILED
    return READY if t.all_done else WAIT


def _none_failed_min_one_success(t):
    if t.failed:
        return UPSTREAM_FAILED
    if not t.all_done:
        return WAIT
    return READY if t.success else SKIPPED


def _none_skipped(t):
    if t.skipped:
        return SKIPPED
    return READY if t.all_done else WAIT


def _always(t):
    return READY


_RULES = {
    "all_success": _all_success,
    "all_failed": _all_failed,
    "all_done": _all_done,
    "one_success": _one_success,
    "one_failed": _one_failed,
    "none_failed": _none_failed,
    "none_failed_min_one_success": _none_failed_min_one_success,
    "none_skipped": _none_skipped,
    "always": _always,
}


def evaluate(rule, upstream_states):
    """Return "ready", "wait", "upstream_failed" or "skipped" (see the module docstring).

    `upstream_states` holds the state of each upstream task instance. A task with no
    upstream is always ready. Raises ValueError for a rule not in TRIGGER_RULES.
    """
    if rule not in TRIGGER_RULES:
        raise ValueError(
            f"unknown trigger rule {rule!r}; expected one of {', '.join(TRIGGER_RULES)}"
        )
    states = list(upstream_states)
    return _RULES[rule](_Tally.of(states)) if states else READY
