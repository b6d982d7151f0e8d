"""Inputs schemathesis found to be 500s, each now a clear 4xx (regressions)."""

import pytest

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
