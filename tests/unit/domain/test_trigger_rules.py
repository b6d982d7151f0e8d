import pytest

from app.domain.trigger_rules import FINISHED, TRIGGER_RULES, evaluate

READY, WAIT, UPSTREAM_FAILED, SKIPPED = "ready", "wait", "upstream_failed", "skipped"

CASES = [
    # all_success
    ("all_success", ["success", "success"], READY),
    ("all_success", ["success", "running"], WAIT),
    ("all_success", ["none", "queued"], WAIT),
    ("all_success", ["success", "up_for_retry"], WAIT),
    ("all_success", ["failed", "running"], UPSTREAM_FAILED),
    ("all_success", ["upstream_failed", "success"], UPSTREAM_FAILED),
    ("all_success", ["skipped", "failed"], UPSTREAM_FAILED),
    ("all_success", ["skipped", "running"], SKIPPED),
    ("all_success", ["cancelled", "success"], SKIPPED),
    # all_failed
    ("all_failed", ["failed", "upstream_failed"], READY),
    ("all_failed", ["failed", "running"], WAIT),
    ("all_failed", ["up_for_retry"], WAIT),
    ("all_failed", ["success", "running"], SKIPPED),
    ("all_failed", ["skipped", "failed"], SKIPPED),
    ("all_failed", ["skipped", "running"], SKIPPED),  # as in Airflow: decided at the first skip
    ("all_failed", ["cancelled", "failed"], SKIPPED),
    # all_done
    ("all_done", ["success", "failed", "upstream_failed", "skipped", "cancelled"], READY),
    ("all_done", ["success", "up_for_retry"], WAIT),
    ("all_done", ["failed", "none"], WAIT),
    # one_success
    ("one_success", ["success", "running"], READY),
    ("one_success", ["failed", "success"], READY),
    ("one_success", ["failed", "running"], WAIT),
    ("one_success", ["failed", "skipped"], UPSTREAM_FAILED),
    ("one_success", ["upstream_failed"], UPSTREAM_FAILED),
    ("one_success", ["skipped", "skipped"], SKIPPED),
    ("one_success", ["cancelled", "skipped"], SKIPPED),
    # one_failed
    ("one_failed", ["failed", "running"], READY),
    ("one_failed", ["upstream_failed", "none"], READY),
    ("one_failed", ["success", "running"], WAIT),
    ("one_failed", ["success", "skipped"], SKIPPED),
    ("one_failed", ["cancelled"], SKIPPED),
    # none_failed
    ("none_failed", ["success", "skipped"], READY),
    ("none_failed", ["skipped", "cancelled"], READY),
    ("none_failed", ["success", "queued"], WAIT),
    ("none_failed", ["failed", "running"], UPSTREAM_FAILED),
    ("none_failed", ["upstream_failed", "success"], UPSTREAM_FAILED),
    # none_failed_min_one_success
    ("none_failed_min_one_success", ["success", "skipped"], READY),
    ("none_failed_min_one_success", ["skipped", "running"], WAIT),
    ("none_failed_min_one_success", ["success", "up_for_retry"], WAIT),
    ("none_failed_min_one_success", ["upstream_failed", "running"], UPSTREAM_FAILED),
    ("none_failed_min_one_success", ["failed", "success"], UPSTREAM_FAILED),
    ("none_failed_min_one_success", ["skipped", "skipped"], SKIPPED),
    ("none_failed_min_one_success", ["skipped", "cancelled"], SKIPPED),
    # none_skipped: only "skipped" counts as a skip, not "cancelled"
    ("none_skipped", ["success", "failed", "upstream_failed"], READY),
    ("none_skipped", ["cancelled", "success"], READY),
    ("none_skipped", ["success", "running"], WAIT),
    ("none_skipped", ["skipped", "running"], SKIPPED),
    # always
    ("always", ["running", "none"], READY),
    ("always", ["failed", "skipped"], READY),
]


@pytest.mark.parametrize(
    ("rule", "states", "expected"),
    CASES,
    ids=[f"{rule}-{'-'.join(states)}" for rule, states, _ in CASES],
)
def test_evaluate(rule, states, expected):
    assert evaluate(rule, states) == expected


def test_table_covers_every_rule_and_every_outcome_it_can_produce():
    produced = {(rule, expected) for rule, _, expected in CASES}
    ruled_out = {
        ("all_done", UPSTREAM_FAILED),
        ("all_done", SKIPPED),
        ("all_failed", UPSTREAM_FAILED),
        ("one_failed", UPSTREAM_FAILED),
        ("none_failed", SKIPPED),
        ("none_skipped", UPSTREAM_FAILED),
        *(("always", outcome) for outcome in (WAIT, UPSTREAM_FAILED, SKIPPED)),
    }
    outcomes = (READY, WAIT, UPSTREAM_FAILED, SKIPPED)
    assert produced == {(r, o) for r in TRIGGER_RULES for o in outcomes} - ruled_out


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_no_upstream_is_ready_for_every_rule(rule):
    assert evaluate(rule, []) == READY


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_accepts_any_iterable_of_states(rule):
    assert evaluate(rule, iter(["success", "failed"])) == evaluate(rule, ["success", "failed"])


@pytest.mark.parametrize("rule", ["all_skipped", "ALL_SUCCESS", "", None])
def test_unknown_rule_raises(rule):
    with pytest.raises(ValueError, match="unknown trigger rule"):
        evaluate(rule, ["success"])


def test_unknown_rule_raises_even_without_upstream():
    with pytest.raises(ValueError):
        evaluate("one_done", [])


def test_unknown_rule_error_lists_every_rule():
    with pytest.raises(ValueError) as raised:
        evaluate("one_done", ["success"])
    assert str(raised.value) == (
        "unknown trigger rule 'one_done'; expected one of all_success, all_failed, all_done, "
        "one_success, one_failed, none_failed, none_failed_min_one_success, none_skipped, always"
    )


def test_finished_states():
    assert sorted(FINISHED) == ["cancelled", "failed", "skipped", "success", "upstream_failed"]
    assert TRIGGER_RULES[0] == "all_success" and len(TRIGGER_RULES) == 9


def test_empty_iterator_counts_as_no_upstream():
    assert evaluate("one_success", iter([])) == READY
