"""Deploying functions over HTTP, on every backend."""

import pytest

from tests.conftest import deploy_source

HELLO = "def handler(event, context):\n    return {'hi': event['conf']}\n"


def test_deploy_creates_version_one_then_identical_source_returns_it(client, admin):
    first = client.post("/api/v1/functions", json={"name": "hi", "source": HELLO}, headers=admin)
    assert first.status_code == 201
    assert first.get_json()["version"] == 1
    again = client.post("/api/v1/functions", json={"name": "hi", "source": HELLO}, headers=admin)
    assert again.status_code == 200
    assert again.get_json()["sha256"] == first.get_json()["sha256"]


def test_changed_source_or_settings_make_version_n_plus_one(client, admin):
    deploy_source(client, admin, "hi", HELLO)
    changed = deploy_source(client, admin, "hi", HELLO + "# v2\n")
    assert changed["version"] == 2
    retimed = deploy_source(client, admin, "hi", HELLO + "# v2\n", timeout=5)
    assert retimed["version"] == 3
    listing = client.get("/api/v1/functions/hi", headers=admin).get_json()
    assert [v["version"] for v in listing["versions"]] == [3, 2, 1]
    assert listing["latest_version"] == 3


def test_a_version_keeps_its_source(client, admin):
    deploy_source(client, admin, "hi", HELLO)
    deploy_source(client, admin, "hi", HELLO + "# v2\n")
    response = client.get("/api/v1/functions/hi/versions/1", headers=admin)
    assert response.get_json()["source"] == HELLO
    assert client.get("/api/v1/functions/hi/versions/9", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("source", "field", "fragment"),
    [
        ("def handler(event, context)\n    return 1\n", "source", "SyntaxError"),
        ("def other(event, context):\n    return 1\n", "handler", "defines no top-level 'handler'"),
        ("handler = 5\n", "handler", "not callable"),
        ("handler = int('5')\n", "source", "not callable"),
        (
            "import not_a_module_anywhere\ndef handler(e, c):\n    pass\n",
            "source",
            "ModuleNotFound",
        ),
        ("raise SystemExit(1)\ndef handler(e, c):\n    pass\n", "source", "SystemExit"),
    ],
)
def test_a_function_that_cannot_load_is_422_at_deploy_time(client, admin, source, field, fragment):
    response = client.post(
        "/api/v1/functions", json={"name": "bad", "source": source}, headers=admin
    )
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert any(d["field"] == field and fragment in d["message"] for d in details), details
    assert client.get("/api/v1/functions/bad", headers=admin).status_code == 404


def test_every_bad_field_is_reported_at_once(client, admin):
    body = {"name": "-x", "source": "", "timeout": -1, "memory_mb": "lots", "env": [], "oops": 1}
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422
    fields = {d["field"] for d in response.get_json()["error"]["details"]}
    assert fields == {"name", "source", "timeout", "memory_mb", "env", "oops"}


def test_list_shows_latest_versions(client, admin):
    deploy_source(client, admin, "b", HELLO)
    deploy_source(client, admin, "a", HELLO)
    deploy_source(client, admin, "a", HELLO + "#\n")
    listing = client.get("/api/v1/functions", headers=admin).get_json()["functions"]
    assert [(f["name"], f["version"]) for f in listing] == [("a", 2), ("b", 1)]


def test_delete_is_refused_while_a_dag_uses_the_function(client, admin):
    deploy_source(client, admin, "hi", HELLO)
    spec = {"dag_id": "d", "tasks": [{"task_id": "t", "function": "hi"}]}
    assert client.post("/api/v1/dags", json=spec, headers=admin).status_code == 201
    refused = client.delete("/api/v1/functions/hi", headers=admin)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["details"] == {"dags": ["d"]}
    assert client.delete("/api/v1/dags/d", headers=admin).status_code == 204
    assert client.delete("/api/v1/functions/hi", headers=admin).status_code == 204
    assert client.get("/api/v1/functions/hi", headers=admin).status_code == 404
