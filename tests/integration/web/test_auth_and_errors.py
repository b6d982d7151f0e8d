"""Who may call the API, and how bad requests are answered, on every backend."""

import pytest

from app.engine import auth
from app.store.db import db


def token(role: str) -> dict:
    with db.connection_context():
        return {"Authorization": f"Bearer {auth.create_token(role)}"}


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong", "Basic dGVzdDp0ZXN0", "bearer  brisa_nope"],
)
def test_no_token_or_a_wrong_one_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/dags", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_created_token_works_and_only_its_hash_is_stored(client):
    headers = token("viewer")
    assert client.get("/api/v1/dags", headers=headers).status_code == 200
    raw = headers["Authorization"].split()[1]
    from app.store.models import ApiToken

    with db.connection_context():
        stored = [row.token_hash for row in ApiToken.select()]
    assert raw not in stored and auth.hash_token(raw) in stored


def test_an_expired_token_is_401(client):
    from app.store.models import ApiToken

    headers = token("admin")
    with db.connection_context():
        ApiToken.update(expires_at=ApiToken.created_at).execute()
    assert client.get("/api/v1/dags", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("viewer", "get", "/api/v1/functions", True),
        ("viewer", "post", "/api/v1/functions", False),
        ("viewer", "post", "/api/v1/dags/x/runs", False),
        ("operator", "post", "/api/v1/dags/x/runs", True),
        ("operator", "post", "/api/v1/dags", False),
        ("operator", "delete", "/api/v1/dags/x", False),
        ("admin", "delete", "/api/v1/dags/x", True),
    ],
)
def test_roles(client, role, method, path, allowed):
    response = getattr(client, method)(path, headers=token(role), json={})
    if allowed:
        assert response.status_code != 403
    else:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"


def test_malformed_json_is_400(client, admin):
    response = client.post(
        "/api/v1/dags", data='{"dag_id": ', headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("malformed JSON")


def test_a_body_that_is_not_json_is_415(client, admin):
    response = client.post("/api/v1/dags", data="dag_id=x", headers=admin)
    assert response.status_code == 415


def test_a_missing_body_is_400(client, admin):
    assert client.post("/api/v1/functions", headers=admin).status_code == 400


def test_a_huge_body_is_413(client, admin):
    body = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = client.post(
        "/api/v1/functions", data=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/nowhere", 404),
        ("get", "/api/v1/runs/999", 404),
        ("get", "/api/v1/runs/abc", 404),
        ("get", "/api/v1/dags/none", 404),
        ("put", "/api/v1/functions", 405),
        ("get", "/api/v1/dags/none/runs?limit=0", 404),
    ],
)
def test_errors_are_json_never_html(client, admin, method, path, status):
    response = getattr(client, method)(path, headers=admin)
    assert response.status_code == status
    assert response.is_json and set(response.get_json()["error"]) == {"code", "message", "details"}


def test_a_bad_page_size_is_422(client, admin):
    from tests.conftest import deploy_source

    deploy_source(client, admin, "f", "def handler(e, c):\n    return 1\n")
    client.post(
        "/api/v1/dags",
        json={"dag_id": "d", "tasks": [{"task_id": "t", "function": "f"}]},
        headers=admin,
    )
    assert client.get("/api/v1/dags/d/runs?limit=0", headers=admin).status_code == 422
    assert client.get("/api/v1/dags/d/runs?limit=x", headers=admin).status_code == 422


def test_health_needs_no_token(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "queue": "ok"}
