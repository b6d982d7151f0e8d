"""Secrets: stored encrypted, never returned, given only to the functions that list them,
masked wherever a try could write them."""

from app.store.db import db
from app.store.models import ALL_MODELS
from tests.conftest import deploy_source, wait_for_run

VALUE = "s3cr3t-value-7f1e"
LEAKY = (
    "import logging\n"
    "def handler(event, context):\n"
    "    token = context.secrets['api_token']\n"
    "    print('the token is', token)\n"
    "    logging.getLogger('leak').warning('again: %s', token)\n"
    "    return {'token': token, 'names': sorted(context.secrets)}\n"
)


def every_stored_text() -> str:
    """Every row of every table, as text."""
    with db.connection_context():
        return "\n".join(
            str(row) for model in ALL_MODELS for row in model.select().dicts().iterator()
        )


def test_a_secret_never_appears_in_clear(client, admin, consumer):
    created = client.post(
        "/api/v1/secrets", json={"name": "api_token", "value": VALUE}, headers=admin
    )
    assert created.status_code == 201 and VALUE not in created.get_data(as_text=True)
    client.post("/api/v1/secrets", json={"name": "other", "value": "unrelated"}, headers=admin)
    deploy_source(client, admin, "leaky", LEAKY, secrets=["api_token"])
    spec = {"dag_id": "d", "tasks": [{"task_id": "t", "function": "leaky"}]}
    client.post("/api/v1/dags", json=spec, headers=admin)
    run_id = client.post("/api/v1/dags/d/runs", headers=admin).get_json()["run_id"]
    assert wait_for_run(run_id).state == "success"

    responses = [
        client.get("/api/v1/secrets", headers=admin),
        client.get("/api/v1/secrets/api_token", headers=admin),
        client.get(f"/api/v1/runs/{run_id}", headers=admin),
        client.get(f"/api/v1/runs/{run_id}/tasks/t", headers=admin),
        client.get(f"/api/v1/runs/{run_id}/tasks/t/logs", headers=admin),
        client.get("/api/v1/functions/leaky/versions/1", headers=admin),
    ]
    for response in responses:
        assert response.status_code == 200
        assert VALUE not in response.get_data(as_text=True), response.request.path
    task = responses[3].get_json()
    assert task["result"] == {"token": "***", "names": ["api_token"]}  # only what it listed
    log = responses[4].get_json()["text"]
    assert "the token is ***" in log and "again: ***" in log
    assert VALUE not in every_stored_text()


def test_a_function_listing_a_missing_secret_fails_clearly(client, admin, consumer):
    deploy_source(client, admin, "needy", LEAKY, secrets=["api_token"])
    response = client.post("/api/v1/functions/needy/invoke?wait=20", headers=admin)
    assert response.get_json()["state"] == "failed"
    assert response.get_json()["error"] == "secret 'api_token' does not exist"


def test_secrets_api(client, admin):
    assert (
        client.post("/api/v1/secrets", json={"name": "a b", "value": ""}, headers=admin).status_code
        == 422
    )
    assert (
        client.post("/api/v1/secrets", json={"name": "k", "value": "1"}, headers=admin).status_code
        == 201
    )
    assert (
        client.post("/api/v1/secrets", json={"name": "k", "value": "2"}, headers=admin).status_code
        == 200
    )
    listing = client.get("/api/v1/secrets", headers=admin).get_json()["secrets"]
    assert [s["name"] for s in listing] == ["k"] and "value" not in listing[0]
    assert client.delete("/api/v1/secrets/k", headers=admin).status_code == 204
    assert client.get("/api/v1/secrets/k", headers=admin).status_code == 404
