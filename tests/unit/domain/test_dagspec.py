import dataclasses
import json
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.dagspec import (
    PRESETS,
    TRIGGER_RULES,
    DagSpec,
    SpecInvalid,
    TaskSpec,
    parse_dag_spec,
    validate_dag_spec,
)

FUNCTIONS = {"fetch_orders", "summarise", "post_slack"}


def full_spec():
    return {
        "dag_id": "nightly_report",
        "description": "orders, summarised nightly",
        "schedule": "0 3 * * *",
        "timezone": "Europe/Lisbon",
        "start_date": "2026-01-01T00:00:00Z",
        "end_date": None,
        "catchup": False,
        "max_active_runs": 1,
        "max_active_tasks": 8,
        "tags": ["reports"],
        "default_args": {
            "retries": 2,
            "retry_delay": 10,
            "retry_backoff": True,
            "max_retry_delay": 600,
            "timeout": 300,
        },
        "tasks": [
            {"task_id": "extract", "function": "fetch_orders"},
            {
                "task_id": "transform",
                "function": "summarise",
                "version": 3,
                "upstream": ["extract"],
                "args": {"by": "day"},
            },
            {
                "task_id": "notify",
                "function": "post_slack",
                "upstream": ["transform"],
                "trigger_rule": "all_done",
                "retries": 0,
                "timeout": 30,
            },
        ],
    }


def task(task_id, **fields):
    return {"task_id": task_id, "function": "fetch_orders", **fields}


def spec(*tasks, **fields):
    return {"dag_id": "d", "tasks": list(tasks) or [task("a")], **fields}


def errors_of(data, dag_id=None):
    return validate_dag_spec(data, FUNCTIONS, dag_id)


def assert_one_error(errors, field, fragment):
    assert [e["field"] for e in errors] == [field], errors
    assert fragment in errors[0]["message"], errors[0]["message"]


# --- every kind of error, one at a time ---------------------------------------------------

DAG_ERRORS = [
    ({"owner": "me"}, "owner", "unknown key 'owner'"),
    ({"dag_id": 5}, "dag_id", "dag_id must be a string"),
    ({"dag_id": None}, "dag_id", "dag_id is required"),
    ({"dag_id": "-leading-dash"}, "dag_id", "is invalid"),
    ({"dag_id": ".hidden"}, "dag_id", "is invalid"),
    ({"dag_id": "has space"}, "dag_id", "is invalid"),
    ({"dag_id": "x" * 101}, "dag_id", "is invalid"),
    ({"dag_id": "trailing\n"}, "dag_id", "is invalid"),
    ({"description": 5}, "description", "description must be a string"),
    ({"schedule": 5}, "schedule", "must be a cron expression, a preset"),
    ({"schedule": "@fortnightly"}, "schedule", "must be one of the presets"),
    ({"schedule": "0 0 3 * * *"}, "schedule", "must have 5 fields"),
    ({"schedule": "0 0 3 * * * 2026"}, "schedule", "must have 5 fields"),
    ({"schedule": "61 * * * *"}, "schedule", "valid cron expression"),
    ({"schedule": "* * * *"}, "schedule", "valid cron expression"),
    ({"schedule": ""}, "schedule", "valid cron expression"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "IANA time zone"),
    ({"timezone": "../x"}, "timezone", "IANA time zone"),
    ({"timezone": "/etc/localtime"}, "timezone", "IANA time zone"),
    ({"timezone": "Europe"}, "timezone", "IANA time zone"),
    ({"timezone": "zone.tab"}, "timezone", "IANA time zone"),
    ({"timezone": None}, "timezone", "IANA time zone"),
    ({"start_date": "yesterday"}, "start_date", "ISO-8601"),
    ({"start_date": 20260101}, "start_date", "ISO-8601"),
    ({"end_date": "2026-13-01"}, "end_date", "ISO-8601"),
    ({"start_date": "2026-02-01", "end_date": "2026-01-31T23:59Z"}, "end_date", "before start"),
    ({"catchup": "yes"}, "catchup", "catchup must be true or false"),
    ({"catchup": 1}, "catchup", "must be true or false"),
    ({"max_active_runs": 0}, "max_active_runs", "must be an integer from 1 to 100000"),
    ({"max_active_runs": True}, "max_active_runs", "must be an integer from 1 to 100000"),
    ({"max_active_runs": 1.5}, "max_active_runs", "must be an integer from 1 to 100000"),
    ({"max_active_runs": "2"}, "max_active_runs", "must be an integer from 1 to 100000"),
    ({"max_active_tasks": -1}, "max_active_tasks", "must be an integer from 1 to 100000"),
    ({"max_active_tasks": 100_001}, "max_active_tasks", "must be an integer from 1 to 100000"),
    ({"max_active_runs": 10**30}, "max_active_runs", "must be an integer from 1 to 100000"),
    ({"tags": "reports"}, "tags", "must be a list of strings"),
    ({"tags": ["ok", 1]}, "tags", "must be a list of strings"),
    ({"default_args": []}, "default_args", "must be an object"),
    ({"default_args": {"owner": "me"}}, "default_args.owner", "unknown key 'owner'"),
    ({"default_args": {"retries": -1}}, "default_args.retries", "integer from 0 to 1000"),
    ({"default_args": {"retries": True}}, "default_args.retries", "integer from 0 to 1000"),
    ({"default_args": {"retries": 1001}}, "default_args.retries", "integer from 0 to 1000"),
    ({"default_args": {"retries": 2**64}}, "default_args.retries", "integer from 0 to 1000"),
    ({"default_args": {"retry_delay": 0}}, "default_args.retry_delay", "number of seconds"),
    ({"default_args": {"retry_delay": "10"}}, "default_args.retry_delay", "number of seconds"),
    (
        {"default_args": {"retry_delay": float("nan")}},
        "default_args.retry_delay",
        "number of seconds",
    ),
    (
        {"default_args": {"max_retry_delay": -5}},
        "default_args.max_retry_delay",
        "number of seconds",
    ),
    ({"default_args": {"timeout": 0}}, "default_args.timeout", "number of seconds"),
    ({"default_args": {"retry_backoff": 1}}, "default_args.retry_backoff", "true or false"),
    ({"tasks": None}, "tasks", "tasks is required"),
    ({"tasks": {"a": {}}}, "tasks", "tasks must be a list"),
    ({"tasks": []}, "tasks", "at least one task"),
]


@pytest.mark.parametrize(("fields", "field", "fragment"), DAG_ERRORS)
def test_dag_level_errors(fields, field, fragment):
    data = {**spec(), **fields}
    assert_one_error(errors_of(data), field, fragment)


def test_missing_tasks_key():
    assert_one_error(errors_of({"dag_id": "d"}), "tasks", "tasks is required")


@pytest.mark.parametrize("data", [[], "spec", None, 3])
def test_spec_must_be_an_object(data):
    assert_one_error(errors_of(data), "spec", "must be a JSON object")


TASK_ERRORS = [
    ([task("a"), "b"], "tasks[1]", "must be an object"),
    ([task("a", owner="me")], "tasks[0].owner", "unknown key 'owner'"),
    ([{"function": "fetch_orders"}], "tasks[0].task_id", "task_id is required"),
    ([task("a/b")], "tasks[0].task_id", "is invalid"),
    ([task("")], "tasks[0].task_id", "is invalid"),
    ([task(7)], "tasks[0].task_id", "task_id must be a string"),
    ([task("a"), task("a")], "tasks[1].task_id", "duplicate task_id 'a'"),
    ([{"task_id": "a"}], "tasks[0].function", "function is required"),
    ([task("a", function=["x"])], "tasks[0].function", "function must be a string"),
    ([task("a", function="nope")], "tasks[0].function", "unknown function 'nope'"),
    ([task("a", version=0)], "tasks[0].version", "integer from 1 to 2147483647"),
    ([task("a", version=True)], "tasks[0].version", "integer from 1 to 2147483647"),
    ([task("a", version="3")], "tasks[0].version", "integer from 1 to 2147483647"),
    ([task("a", version=1.0)], "tasks[0].version", "integer from 1 to 2147483647"),
    ([task("a", version=2**31)], "tasks[0].version", "integer from 1 to 2147483647"),
    ([task("a", timeout=10**400)], "tasks[0].timeout", "number of seconds"),
    ([task("a"), task("b", upstream="a")], "tasks[1].upstream", "list of task ids"),
    ([task("a"), task("b", upstream=[1])], "tasks[1].upstream", "list of task ids"),
    (
        [task("a"), task("b", upstream=["zzz"])],
        "tasks[1].upstream[0]",
        "unknown upstream task 'zzz'",
    ),
    ([task("a"), task("b", upstream=["a", "a"])], "tasks[1].upstream[1]", "duplicate upstream"),
    ([task("a", upstream=["a"])], "tasks[0].upstream[0]", "cycle: a -> a"),
    ([task("a", args=[1])], "tasks[0].args", "args must be an object"),
    ([task("a", args=None)], "tasks[0].args", "args must be an object"),
    ([task("a", trigger_rule="sometimes")], "tasks[0].trigger_rule", "must be one of"),
    ([task("a", retries=-1)], "tasks[0].retries", "integer from 0 to 1000"),
    ([task("a", retries=1.5)], "tasks[0].retries", "integer from 0 to 1000"),
    ([task("a", retry_delay=0)], "tasks[0].retry_delay", "number of seconds"),
    ([task("a", max_retry_delay="x")], "tasks[0].max_retry_delay", "number of seconds"),
    ([task("a", timeout=-1)], "tasks[0].timeout", "number of seconds"),
    ([task("a", timeout=float("inf"))], "tasks[0].timeout", "number of seconds"),
    ([task("a", retry_backoff="true")], "tasks[0].retry_backoff", "true or false"),
]


@pytest.mark.parametrize(("tasks", "field", "fragment"), TASK_ERRORS)
def test_task_level_errors(tasks, field, fragment):
    assert_one_error(errors_of(spec(*tasks)), field, fragment)


def test_unknown_keys_are_each_listed():
    data = {**spec(task("a", x=1, y=2)), "owner": "me", "team": "data"}
    assert sorted(e["field"] for e in errors_of(data)) == [
        "owner",
        "tasks[0].x",
        "tasks[0].y",
        "team",
    ]


def test_trigger_rule_message_lists_the_rules():
    (error,) = errors_of(spec(task("a", trigger_rule="maybe")))
    assert all(rule in error["message"] for rule in TRIGGER_RULES)


def test_garbage_values_are_reported_not_raised():
    data = {
        "dag_id": {"x": 1},
        "schedule": ["x"],
        "timezone": ["UTC"],
        "start_date": {"y": 2026},
        "tags": [[1]],
        "tasks": [
            {"task_id": ["a"], "function": {"f": 1}, "upstream": [["a"]], "trigger_rule": []},
            {"task_id": "b", "function": "fetch_orders", "upstream": [{"a": 1}, None]},
        ],
    }
    fields = {e["field"] for e in errors_of(data)}
    assert fields == {
        "dag_id",
        "schedule",
        "timezone",
        "start_date",
        "tags",
        "tasks[0].task_id",
        "tasks[0].function",
        "tasks[0].upstream",
        "tasks[0].trigger_rule",
        "tasks[1].upstream",
    }


# --- valid specs ---------------------------------------------------------------------------

VALID = [
    {},
    {"schedule": None},
    *({"schedule": preset} for preset in PRESETS),
    {"schedule": "*/15 * * * *"},
    {"schedule": "0 3 * * mon-fri"},
    {"schedule": "0 3 * * *", "start_date": None},
    {"timezone": "America/New_York", "start_date": "2026-01-01"},
    {"start_date": "2026-01-01T00:00:00+02:00", "end_date": "2026-01-01T00:00:00+01:00"},
    {"start_date": "2026-01-01", "end_date": "2026-01-01"},
    {"description": "", "tags": [], "catchup": True, "default_args": {}},
    {"default_args": {"timeout": None, "retry_delay": 0.5}},
]


@pytest.mark.parametrize("fields", VALID)
def test_valid_specs(fields):
    assert errors_of({**spec(), **fields}) == []


def test_valid_tasks():
    tasks = [
        task("a", version=None, timeout=None, args={}, upstream=[]),
        task("b.2-x_y", version=1, upstream=["a"], trigger_rule="one_failed", retries=0),
    ]
    assert errors_of(spec(*tasks)) == []


def test_function_names_may_be_any_collection():
    assert validate_dag_spec(spec(), ["fetch_orders"]) == []
    assert_one_error(validate_dag_spec(spec(), []), "tasks[0].function", "unknown function")


# --- dag_id from the URL ---------------------------------------------------------------------


def test_url_dag_id_used_when_body_has_none():
    data = spec()
    del data["dag_id"]
    assert errors_of(data, dag_id="from_url") == []
    assert parse_dag_spec(data, FUNCTIONS, dag_id="from_url").dag_id == "from_url"


def test_url_dag_id_must_match_body():
    assert_one_error(errors_of(spec(), dag_id="other"), "dag_id", "does not match 'other'")
    assert errors_of(spec(), dag_id="d") == []


def test_url_dag_id_is_validated_too():
    data = spec()
    del data["dag_id"]
    assert_one_error(errors_of(data, dag_id="../x"), "dag_id", "is invalid")


def test_dag_id_required_without_url():
    data = spec()
    del data["dag_id"]
    assert_one_error(errors_of(data), "dag_id", "dag_id is required")


# --- all errors at once --------------------------------------------------------------------


def test_all_errors_reported_at_once():
    data = full_spec()
    data["dag_id"] = "bad id"
    data["schedule"] = "every day"
    data["default_args"]["retries"] = -1
    data["tasks"][1]["function"] = "missing_fn"
    errors = errors_of(data)
    assert [e["field"] for e in errors] == [
        "dag_id",
        "schedule",
        "default_args.retries",
        "tasks[1].function",
    ]
    assert errors[3]["message"] == "unknown function 'missing_fn'"
    assert all(set(e) == {"field", "message"} for e in errors)


def test_parse_raises_spec_invalid_with_every_error():
    data = spec(task("a", function="nope"), schedule="bogus")
    with pytest.raises(SpecInvalid) as caught:
        parse_dag_spec(data, FUNCTIONS)
    assert caught.value.errors == errors_of(data)
    assert len(caught.value.errors) == 2
    assert "schedule" in str(caught.value) and "unknown function 'nope'" in str(caught.value)


def test_spec_invalid_survives_pickling():
    error = SpecInvalid([{"field": "dag_id", "message": "dag_id is required"}])
    assert pickle.loads(pickle.dumps(error)).errors == error.errors


# --- cycles --------------------------------------------------------------------------------


def test_self_loop_reported_once_on_the_upstream_entry():
    errors = errors_of(spec(task("a"), task("b", upstream=["a", "b"])))
    assert errors == [
        {
            "field": "tasks[1].upstream[1]",
            "message": "task 'b' cannot be its own upstream (cycle: b -> b)",
        }
    ]


def test_two_cycle():
    errors = errors_of(spec(task("a", upstream=["b"]), task("b", upstream=["a"])))
    assert errors == [{"field": "tasks", "message": "cycle: a -> b -> a"}]


def test_three_cycle_behind_a_root():
    tasks = [
        task("root"),
        task("a", upstream=["root", "c"]),
        task("b", upstream=["a"]),
        task("c", upstream=["b"]),
    ]
    assert errors_of(spec(*tasks)) == [{"field": "tasks", "message": "cycle: a -> b -> c -> a"}]


def test_two_separate_cycles_are_both_reported():
    tasks = [
        task("a", upstream=["b"]),
        task("b", upstream=["a"]),
        task("x", upstream=["y"]),
        task("y", upstream=["x"]),
    ]
    assert [e["message"] for e in errors_of(spec(*tasks))] == [
        "cycle: a -> b -> a",
        "cycle: x -> y -> x",
    ]


def test_diamond_is_not_a_cycle():
    tasks = [
        task("a"),
        task("b", upstream=["a"]),
        task("c", upstream=["a"]),
        task("d", upstream=["b", "c"]),
    ]
    assert errors_of(spec(*tasks)) == []


def test_long_chain_does_not_hit_the_recursion_limit():
    tasks = [task("t0")] + [task(f"t{i}", upstream=[f"t{i - 1}"]) for i in range(1, 3000)]
    assert errors_of(spec(*tasks)) == []
    tasks[0]["upstream"] = ["t2999"]
    (error,) = errors_of(spec(*tasks))
    assert (
        error["message"].startswith("cycle: t0 -> t1 -> ") and error["message"].count("->") == 3000
    )


# --- parsing ---------------------------------------------------------------------------------


def test_full_spec_parses():
    dag = parse_dag_spec(full_spec(), FUNCTIONS)
    inherited = {
        "retries": 2,
        "retry_delay": 10.0,
        "retry_backoff": True,
        "max_retry_delay": 600.0,
        "timeout": 300.0,
    }
    assert dag == DagSpec(
        dag_id="nightly_report",
        description="orders, summarised nightly",
        schedule="0 3 * * *",
        timezone="Europe/Lisbon",
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        end_date=None,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=8,
        tags=("reports",),
        default_args=full_spec()["default_args"],
        tasks=(
            TaskSpec("extract", "fetch_orders", **inherited),
            TaskSpec("transform", "summarise", 3, ("extract",), {"by": "day"}, **inherited),
            TaskSpec(
                "notify",
                "post_slack",
                upstream=("transform",),
                trigger_rule="all_done",
                **{**inherited, "retries": 0, "timeout": 30.0},
            ),
        ),
    )
    assert isinstance(dag.tasks[0].retry_delay, float) and isinstance(dag.tasks[2].timeout, float)


def test_defaults_applied():
    dag = parse_dag_spec(spec(), FUNCTIONS)
    assert dag == DagSpec(dag_id="d", tasks=(TaskSpec("a", "fetch_orders"),))
    assert (dag.description, dag.schedule, dag.timezone, dag.catchup) == ("", None, "UTC", False)
    assert (dag.start_date, dag.end_date, dag.tags, dag.default_args) == (None, None, (), {})
    assert (dag.max_active_runs, dag.max_active_tasks) == (16, 16)
    t = dag.tasks[0]
    assert (t.version, t.upstream, t.args, t.trigger_rule) == (None, (), {}, "all_success")
    assert (t.retries, t.retry_delay, t.retry_backoff) == (0, 10.0, False)
    assert (t.max_retry_delay, t.timeout) == (3600.0, None)


def test_task_value_overrides_default_args_even_with_null():
    data = spec(task("a"), task("b", timeout=None, retry_backoff=False))
    data["default_args"] = {"timeout": 120, "retry_backoff": True}
    a, b = parse_dag_spec(data, FUNCTIONS).tasks
    assert (a.timeout, a.retry_backoff) == (120.0, True)
    assert (b.timeout, b.retry_backoff) == (None, False)


def test_default_args_partially_set_fall_back_to_builtins():
    data = spec(task("a"), default_args={"retries": 5})
    (a,) = parse_dag_spec(data, FUNCTIONS).tasks
    assert (a.retries, a.retry_delay, a.max_retry_delay, a.timeout) == (5, 10.0, 3600.0, None)


@pytest.mark.parametrize(
    ("timezone", "value", "expected_utc"),
    [
        ("UTC", "2026-01-01T00:00:00Z", datetime(2026, 1, 1)),
        ("Asia/Tokyo", "2026-01-01T00:00:00Z", datetime(2026, 1, 1)),
        ("Asia/Tokyo", "2026-01-01T00:00:00+02:00", datetime(2025, 12, 31, 22)),
        ("America/New_York", "2026-01-01", datetime(2026, 1, 1, 5)),
        ("America/New_York", "2026-07-01", datetime(2026, 7, 1, 4)),
        ("Europe/Lisbon", "2026-07-01T03:30:00", datetime(2026, 7, 1, 2, 30)),
        ("Europe/Lisbon", "2026-01-15T03:30", datetime(2026, 1, 15, 3, 30)),
        ("UTC", "2026-03-04T05:06:07.250000", datetime(2026, 3, 4, 5, 6, 7, 250000)),
    ],
)
def test_dates_become_aware_utc(timezone, value, expected_utc):
    data = spec(timezone=timezone, start_date=value, end_date=value)
    dag = parse_dag_spec(data, FUNCTIONS)
    assert dag.start_date == dag.end_date == expected_utc.replace(tzinfo=UTC)
    assert dag.start_date.utcoffset() == timedelta(0)


def test_end_date_before_start_date_compares_instants_not_wall_clocks():
    # 09:00 in Tokyo is 00:00 UTC, so an end at 01:00 UTC is after the start.
    data = spec(timezone="Asia/Tokyo", start_date="2026-01-01T09:00", end_date="2026-01-01T01:00Z")
    assert errors_of(data) == []
    data["end_date"] = "2025-12-31T23:59Z"
    assert_one_error(errors_of(data), "end_date", "before start_date")


def test_cron_whitespace_is_normalised_and_presets_kept():
    assert parse_dag_spec(spec(schedule="  0  3 * *\t* "), FUNCTIONS).schedule == "0 3 * * *"
    assert parse_dag_spec(spec(schedule="@daily"), FUNCTIONS).schedule == "@daily"


def test_presets():
    assert PRESETS["@once"] is None
    assert PRESETS["@hourly"] == "0 * * * *"
    assert PRESETS["@daily"] == "0 0 * * *"
    assert PRESETS["@yearly"] == PRESETS["@annually"] == "0 0 1 1 *"
    assert set(PRESETS) == {
        "@once",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    }


def test_parsed_spec_is_frozen_and_copies_its_input():
    data = full_spec()
    dag = parse_dag_spec(data, FUNCTIONS)
    data["tasks"][1]["args"]["by"] = "week"
    data["tasks"][1]["upstream"].append("notify")
    assert dag.task("transform").args == {"by": "day"}
    assert dag.task("transform").upstream == ("extract",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dag.dag_id = "other"


# --- round trip ------------------------------------------------------------------------------


def test_to_dict_round_trips():
    data = full_spec()
    data["start_date"] = "2026-01-01T00:00:00+02:00"
    data["end_date"] = "2027-01-01"
    data["tasks"][0]["timeout"] = None  # explicit null beats default_args.timeout
    dag = parse_dag_spec(data, FUNCTIONS)
    as_dict = json.loads(json.dumps(dag.to_dict()))
    assert as_dict["start_date"] == "2025-12-31T22:00:00Z"
    assert as_dict["end_date"] == "2027-01-01T00:00:00Z"
    assert as_dict["tasks"][0]["timeout"] is None
    assert as_dict["tasks"][1]["upstream"] == ["extract"]
    again = parse_dag_spec(as_dict, FUNCTIONS)
    assert again == dag
    assert again.to_dict() == dag.to_dict()


def test_to_dict_of_minimal_spec_round_trips():
    dag = parse_dag_spec(spec(), FUNCTIONS)
    assert dag.to_dict()["start_date"] is None
    assert parse_dag_spec(dag.to_dict(), FUNCTIONS) == dag


# --- graph helpers -----------------------------------------------------------------------------


@pytest.fixture
def diamond():
    tasks = [
        task("d", upstream=["b", "c"]),
        task("b", upstream=["a"]),
        task("a"),
        task("c", upstream=["a"], function="summarise"),
        task("lonely", function="post_slack"),
    ]
    return parse_dag_spec(spec(*tasks), FUNCTIONS)


def test_roots(diamond):
    assert diamond.roots() == ("a", "lonely")


def test_downstream(diamond):
    assert diamond.downstream("a") == ("b", "c")
    assert diamond.downstream("b") == ("d",)
    assert diamond.downstream("d") == ()


def test_topological_order(diamond):
    order = diamond.topological_order()
    assert order == ("a", "b", "c", "d", "lonely")
    for t in diamond.tasks:
        assert all(order.index(up) < order.index(t.task_id) for up in t.upstream)


def test_task_lookup(diamond):
    assert diamond.task("d").upstream == ("b", "c")
    with pytest.raises(KeyError):
        diamond.task("missing")


def test_function_names(diamond):
    assert diamond.function_names() == {"fetch_orders", "summarise", "post_slack"}


@pytest.mark.parametrize("seconds", [5e-324, 0.0009, 366 * 24 * 3600 + 1])
def test_seconds_outside_a_millisecond_to_a_year_are_refused(seconds):
    errors = errors_of(spec(task("a", timeout=seconds)))
    assert [e["field"] for e in errors] == ["tasks[0].timeout"]


@pytest.mark.parametrize("date", ["0001-01-01", "1969-12-31T23:59:59Z", "3000-01-01"])
def test_dates_outside_1970_to_2999_are_refused(date):
    errors = errors_of(spec(start_date=date))
    assert [e["field"] for e in errors] == ["start_date"]
