"""Strict JSON (RFC 8259, app/domain/strict_json.py): NaN and Infinity are refused on the way
in, never written on the way out, and a value JSON cannot hold is named with its path."""

import datetime
import decimal

import pytest

from app.domain import strict_json


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"x": NaN}', "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        ('{"a": -Infinity}', "-Infinity is not JSON"),
        ("[1e400]", "1e400 is too large for a float"),
        ('{"x": ', "Expecting value"),
    ],
)
def test_loads_refuses_what_rfc_8259_has_no_place_for(text, why):
    with pytest.raises(ValueError, match=why):
        strict_json.loads(text)


def test_loads_reads_strict_json_as_json_does():
    assert strict_json.loads('{"a": [1, 2.5, -0.0, 1e308, null, true, "\\u00e9"]}') == {
        "a": [1, 2.5, -0.0, 1e308, None, True, "é"]
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"ratio": float("nan")}, 'result["ratio"]: float nan is not JSON'),
        ({"big": float("inf")}, 'result["big"]: float inf is not JSON'),
        ([1, {"when": datetime.datetime(2026, 1, 1)}], 'result[1]["when"]: datetime is not JSON'),
        ({"tags": {1, 2}}, 'result["tags"]: set is not JSON'),
        (b"raw", "result: bytes is not JSON"),
        ({"price": decimal.Decimal("1.10")}, 'result["price"]: Decimal is not JSON'),
        ({(1, 2): "pair"}, "result: the key (1, 2) (tuple) is not JSON"),
    ],
)
def test_a_value_json_cannot_hold_is_named_with_its_path(value, message):
    assert strict_json.problem(value, "result") == message
    with pytest.raises(ValueError) as raised:
        strict_json.dumps(value, path="result")
    assert str(raised.value) == message


def test_what_json_can_hold_has_no_problem_and_is_written_as_json_writes_it():
    value = {"a": [1, 2.5, None, True, "x", (3, 4)], 7: {"b": []}}
    assert strict_json.problem(value) is None
    assert strict_json.dumps(value) == '{"a": [1, 2.5, null, true, "x", [3, 4]], "7": {"b": []}}'


def test_a_deep_value_is_walked_without_recursion_and_its_path_is_kept_short():
    deep: list = []
    for _ in range(20_000):
        deep = [deep]
    message = strict_json.problem(deep, "result")
    assert message.endswith("nested deeper than 10000 levels")
    assert len(message) < 200
    with pytest.raises(ValueError, match="^result"):
        strict_json.dumps(deep, path="result")
