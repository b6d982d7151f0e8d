"""app/sandbox/runtimes.py: a SQL row's values become JSON."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from app.domain import strict_json
from app.sandbox import runtimes


def test_jsonable_converts_database_values():
    row = [
        Decimal("1.25"),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        date(2026, 1, 2),
        memoryview(b"\x01\xff"),
        UUID(int=1),
        {"a": [Decimal("2")]},
        None,
    ]
    assert runtimes.jsonable(row) == [
        1.25,
        "2026-01-02T03:04:05+00:00",
        "2026-01-02",
        "01ff",
        "00000000-0000-0000-0000-000000000001",
        {"a": [2.0]},
        None,
    ]
    json.dumps(runtimes.jsonable(row))


def test_a_database_nan_or_infinity_becomes_postgres_text_not_a_non_json_float():
    row = [float("nan"), float("inf"), float("-inf"), Decimal("NaN"), 1.5]
    converted = runtimes.jsonable(row)
    assert converted == ["NaN", "Infinity", "-Infinity", "NaN", 1.5]
    assert strict_json.dumps(converted) == '["NaN", "Infinity", "-Infinity", "NaN", 1.5]'


def test_an_http_body_with_nan_is_kept_as_text_not_read_as_a_float():
    assert runtimes._json_or_text('{"x": NaN}') == '{"x": NaN}'
    assert runtimes._json_or_text('{"x": 1.5}') == {"x": 1.5}
