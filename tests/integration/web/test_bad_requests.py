"""Inputs schemathesis found to be 500s, each now a clear 4xx (regressions)."""

import pytest

from app.engine import webhooks
from tests.conftest import deploy_source

SOURCE = "def handler(e, c):\n    return 1\n"


@pytest.fixture
def dag(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    spec = {"dag_id": "d", "tasks": [{"task_id": "t", "function": "f"}]}
    assert client.post("/api/v1/dags", json=spec, headers=admin).status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/v1/dags/a%00b", None, 404),
        ("GET", "/api/v1/functions/a%00b", None, 404),
        ("GET", "/api/v1/dags/d/runs?state=a%00b", None, 422),
        ("POST", "/api/v1/tokens", {"role": "viewer", "name": "a\u0000b"}, 422),
        ("PUT", "/api/v1/pools/p", {"slots": 1, "description": "a\u0000b"}, 422),
        ("POST", "/api/v1/tokens", {"role": "admin", "expires_in_days": 1.34e132}, 422),
        ("POST", "/api/v1/tokens", {"role": "admin", "expires_in_days": 10**40}, 422),
        ("POST", "/api/v1/dags/d/runs", {"logical_date": "0001-01-01T00:00:00+05:00"}, 422),
        ("POST", "/api/v1/dags/d/backfill", {"start": "0001-01-01", "end": "9999-12-31"}, 422),
        ("GET", "/api/v1/runs/1319122143269535383700897792", None, 404),
        ("GET", "/api/v1/runs/9223372036854775807", None, 404),
        ("GET", "/api/v1/dags/d/runs?limit=%C2%B2", None, 422),  # "²": isdigit, not int()
        ("GET", "/api/v1/dags/d/runs?cursor=99999999999999999999999", None, 422),
        ("GET", "/api/v1/dags/d/runs?limit=" + "9" * 5000, None, 422),
    ],
)
def test_a_hostile_request_is_a_4xx(client, admin, dag, method, path, body, status):
    response = client.open(path, method=method, json=body, headers=admin)
    assert response.status_code == status, response.get_json()
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("start_date", ["0001-01-01", "9999-12-31T23:00:00"])
def test_a_dag_date_out_of_range_is_422(client, admin, dag, start_date):
    spec = {
        "dag_id": "e",
        "schedule": "@daily",
        "start_date": start_date,
        "tasks": [{"task_id": "t", "function": "f"}],
    }
    response = client.post("/api/v1/dags", json=spec, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["field"] == "start_date"


@pytest.mark.parametrize("timeout", [5e-324, 0.0001, 10**9])
def test_a_timeout_out_of_range_is_422(client, admin, timeout):
    body = {"name": "g", "source": SOURCE, "timeout": timeout}
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["field"] == "timeout"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/dags/d/runs", '{"conf": {"x": %s}}'),
        ("/api/v1/functions/f/invoke", '{"x": [1, %s]}'),
        (
            "/api/v1/dags",
            '{"dag_id": "e", "tasks": [{"task_id": "t", "function": "f", "retries": %s}]}',
        ),
    ],
)
def test_non_standard_json_is_400_and_stores_nothing(client, admin, dag, path, template, constant):
    """Python reads NaN, Infinity and 1e400 (as inf); JSON.parse and RFC 8259 do not."""
    headers = {**admin, "Content-Type": "application/json"}
    response = client.post(path, data=template % constant, headers=headers)
    assert response.status_code == 400, response.get_json()
    message = response.get_json()["error"]["message"]
    assert message.startswith("malformed JSON: ") and constant.lstrip("-") in message
    runs = client.get("/api/v1/dags/d/runs", headers=admin).get_json()["runs"]
    assert runs == []
    assert client.get("/api/v1/dags/e", headers=admin).status_code == 404


def _numbers(field: str, value) -> dict:
    return {"dag_id": "e", "tasks": [{"task_id": "t", "function": "f", field: value}]}


@pytest.mark.parametrize(
    ("body", "field", "bound"),
    [
        (_numbers("retries", 1100), "tasks[0].retries", "from 0 to 1000"),
        (_numbers("retries", 10**400), "tasks[0].retries", "from 0 to 1000"),
        (_numbers("timeout", 10**400), "tasks[0].timeout", "from 0.001 to 31622400"),
        (_numbers("retry_delay", 10**30), "tasks[0].retry_delay", "from 0.001 to 31622400"),
        (_numbers("version", 2**63), "tasks[0].version", "from 1 to 2147483647"),
        ({**_numbers("retries", 1), "max_active_runs": 10**6}, "max_active_runs", "to 100000"),
    ],
)
def test_a_number_past_its_bound_is_422_naming_the_bound(client, admin, dag, body, field, bound):
    """Every number has a documented upper bound, checked before it is stored: nothing
    downstream (retry arithmetic, float columns) can overflow on it (#15.2)."""
    response = client.post("/api/v1/dags", json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    [detail] = response.get_json()["error"]["details"]
    assert detail["field"] == field and bound in detail["message"], detail
    assert client.get("/api/v1/dags/e", headers=admin).status_code == 404


def test_an_http_runtime_timeout_past_a_day_is_422(client, admin):
    source = '{"url": "https://example.com/", "timeout": 1' + "0" * 400 + "}"
    body = {"name": "h", "runtime": "http", "source": source}
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    [detail] = response.get_json()["error"]["details"]
    assert "at most 86400" in detail["message"], detail


@pytest.mark.parametrize("depth", [99, 330, 990, 100_000])
def test_a_deeply_nested_body_is_400_not_a_recursion_error(client, admin, dag, depth):
    """#16.6: one nesting limit (100 levels, the body's own object counted) at every door;
    330 levels got a 500 from invoke, 5,000 from every route."""
    body = '{"conf": {"x": ' + "[" * depth + "]" * depth + "}}"
    headers = {**admin, "Content-Type": "application/json"}
    response = client.post("/api/v1/dags/d/runs", data=body, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert "nested deeper than 100 levels" in response.get_json()["error"]["message"]
    assert client.get("/api/v1/dags/d/runs", headers=admin).get_json()["runs"] == []


@pytest.mark.parametrize(
    "path", ["/api/v1/functions/f/invoke", "/api/v1/dags", "/api/v1/functions", "/hooks/d"]
)
def test_json_at_the_limit_passes_and_one_deeper_is_400_at_every_door(client, admin, dag, path):
    deploy_source(client, admin, "f", "def handler(e, c):\n    return 1\n")
    secret = client.post("/api/v1/dags/d/webhook-secret", headers=admin).get_json()
    deeper = ("[" * 101 + "]" * 101).encode()

    def headers(body: bytes) -> dict:
        signed = webhooks.standard_headers(secret["webhook_secret"], "msg-1", body)
        return {**admin, **signed, "Content-Type": "application/json"}

    response = client.post(path, data=deeper, headers=headers(deeper))
    assert response.status_code == 400, (path, response.get_json())
    assert "nested deeper than 100 levels" in response.get_json()["error"]["message"]
    at_limit = ("[" * 100 + "]" * 100).encode()
    response = client.post(path, data=at_limit, headers=headers(at_limit))
    assert response.status_code != 400 or "nested" not in response.get_data(as_text=True)


def test_a_deeply_nested_runtime_spec_is_422(client, admin):
    source = '{"url": "https://example.com/", "body": ' + "[" * 5000 + "]" * 5000 + "}"
    body = {"name": "h", "runtime": "http", "source": source}
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert "nested deeper than 100" in response.get_json()["error"]["details"][0]["message"]
