"""Tokens managed through the API, and the audit log of changes."""

from tests.conftest import deploy_source


def test_a_token_is_shown_once_listed_without_secret_and_revocable(client, admin):
    created = client.post(
        "/api/v1/tokens",
        json={"role": "operator", "name": "ci", "expires_in_days": 30},
        headers=admin,
    )
    assert created.status_code == 201
    token = created.get_json()["token"]
    assert token.startswith("brisa_") and len(token) > 40
    listing = client.get("/api/v1/tokens", headers=admin).get_json()["tokens"]
    assert [(t["name"], t["role"]) for t in listing] == [("ci", "operator")]
    assert token not in str(listing)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/dags", headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/tokens/{created.get_json()['id']}", headers=admin)
    assert revoked.get_json()["revoked_at"] is not None
    assert client.get("/api/v1/dags", headers=headers).status_code == 401


def test_bad_token_requests_are_422(client, admin):
    for body in ({"role": "god"}, {"role": "viewer", "expires_in_days": -1}, {"colour": "red"}):
        assert client.post("/api/v1/tokens", json=body, headers=admin).status_code == 422


def test_changes_are_audited_with_who_and_what(client, admin):
    operator = client.post(
        "/api/v1/tokens", json={"role": "operator", "name": "bot"}, headers=admin
    )
    bot = {"Authorization": f"Bearer {operator.get_json()['token']}"}
    deploy_source(client, admin, "f", "def handler(e, c):\n    return 1\n")
    spec = {"dag_id": "d", "tasks": [{"task_id": "t", "function": "f"}]}
    client.post("/api/v1/dags", json=spec, headers=admin)
    client.post("/api/v1/dags/d/runs", headers=bot)
    client.patch("/api/v1/dags/d", json={"paused": True}, headers=bot)
    client.post("/api/v1/dags", json={"dag_id": "bad"}, headers=admin)  # refused: not audited
    client.get("/api/v1/dags", headers=admin)  # a read: not audited
    events = client.get("/api/v1/audit", headers=admin).get_json()["events"]
    bot_id = operator.get_json()["id"]
    assert [(e["actor"], e["action"], e["target"]) for e in events] == [
        (f"token {bot_id} (bot)", "PATCH /api/v1/dags/<dag_id>", "/api/v1/dags/d"),
        (f"token {bot_id} (bot)", "POST /api/v1/dags/<dag_id>/runs", "/api/v1/dags/d/runs"),
        ("BRISA_ADMIN_TOKEN", "POST /api/v1/dags", "/api/v1/dags"),
        ("BRISA_ADMIN_TOKEN", "POST /api/v1/functions", "/api/v1/functions"),
        ("BRISA_ADMIN_TOKEN", "POST /api/v1/tokens", "/api/v1/tokens"),
    ]
    assert client.get("/api/v1/audit", headers=bot).status_code == 403
