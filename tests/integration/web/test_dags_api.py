"""Creating, versioning, pausing and deleting DAGs over HTTP, on every backend."""

from tests.conftest import deploy_source

SOURCE = "def handler(event, context):\n    return 1\n"


def spec(dag_id="d", **extra):
    tasks = [
        {"task_id": "a", "function": "f"},
        {"task_id": "b", "function": "f", "upstream": ["a"]},
    ]
    return {"dag_id": dag_id, "tasks": tasks, **extra}


def test_create_get_and_list(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    created = client.post("/api/v1/dags", json=spec(), headers=admin)
    assert created.status_code == 201
    assert created.get_json()["version"] == 1
    one = client.get("/api/v1/dags/d", headers=admin).get_json()
    assert [t["task_id"] for t in one["spec"]["tasks"]] == ["a", "b"]
    assert one["paused"] is False and one["last_run"] is None
    listing = client.get("/api/v1/dags", headers=admin).get_json()["dags"]
    assert [d["dag_id"] for d in listing] == ["d"]


def test_creating_twice_is_a_conflict(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    assert client.post("/api/v1/dags", json=spec(), headers=admin).status_code == 201
    assert client.post("/api/v1/dags", json=spec(), headers=admin).status_code == 409


def test_put_adds_a_version_only_when_the_spec_changes(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    assert client.put("/api/v1/dags/d", json=spec(), headers=admin).status_code == 201
    assert client.put("/api/v1/dags/d", json=spec(), headers=admin).status_code == 200
    changed = client.put("/api/v1/dags/d", json=spec(description="x"), headers=admin)
    assert changed.status_code == 201 and changed.get_json()["version"] == 2


def test_put_with_another_dag_id_in_the_body_is_invalid(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    response = client.put("/api/v1/dags/other", json=spec(), headers=admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["field"] == "dag_id"


def test_every_problem_is_listed_with_its_field(client, admin):
    body = {
        "dag_id": "d",
        "schedule": "not cron",
        "tasks": [
            {"task_id": "a", "function": "missing", "upstream": ["b"]},
            {"task_id": "b", "function": "f", "upstream": ["a", "ghost"]},
            {"task_id": "b", "function": "f", "trigger_rule": "sometimes"},
        ],
    }
    deploy_source(client, admin, "f", SOURCE)
    response = client.post("/api/v1/dags", json=body, headers=admin)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    fields = {d["field"] for d in details}
    assert {"schedule", "tasks[0].function", "tasks[1].upstream[1]", "tasks[2].task_id"} <= fields
    assert "tasks[2].trigger_rule" in fields
    assert client.get("/api/v1/dags/d", headers=admin).status_code == 404


def test_a_cycle_is_refused(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    body = spec()
    body["tasks"][0]["upstream"] = ["b"]
    response = client.post("/api/v1/dags", json=body, headers=admin)
    assert response.status_code == 422
    assert "cycle" in response.get_json()["error"]["message"]


def test_pause_and_unpause(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    client.post("/api/v1/dags", json=spec(), headers=admin)
    paused = client.patch("/api/v1/dags/d", json={"paused": True}, headers=admin)
    assert paused.status_code == 200 and paused.get_json()["paused"] is True
    assert client.get("/api/v1/dags/d", headers=admin).get_json()["paused"] is True
    bad = client.patch("/api/v1/dags/d", json={"paused": "yes"}, headers=admin)
    assert bad.status_code == 422


def test_delete_removes_the_dag_and_its_runs(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    client.post("/api/v1/dags", json=spec(), headers=admin)
    run = client.post("/api/v1/dags/d/runs", json={}, headers=admin).get_json()
    assert client.delete("/api/v1/dags/d", headers=admin).status_code == 409  # run in flight
    assert client.delete("/api/v1/dags/d?cancel=true", headers=admin).status_code == 204
    assert client.get("/api/v1/dags/d", headers=admin).status_code == 404
    assert client.get(f"/api/v1/runs/{run['run_id']}", headers=admin).status_code == 404
