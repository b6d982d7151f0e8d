"""Cancelling and deleting what has tries in flight (#15.6, #15.8), through the real worker on
every backend: the history keeps every try with its real end, the try's process is gone
before the answer, and a delete that live work depends on is refused unless it cancels."""

import pytest

from app.store.db import db
from app.store.models import DagRun
from tests.conftest import (
    PID_THEN_SLEEP,
    deploy_source,
    is_running,
    running_pid,
    task_log,
)

OK = "def handler(event, context):\n    return 'ok'\n"


@pytest.fixture
def sleepy(client, admin):
    deploy_source(client, admin, "sleepy", PID_THEN_SLEEP)
    deploy_source(client, admin, "ok", OK)
    tasks = [
        {"task_id": "nap", "function": "sleepy"},
        {"task_id": "after", "function": "ok", "upstream": ["nap"]},
    ]
    response = client.put(
        "/api/v1/dags/slowdag", json={"dag_id": "slowdag", "tasks": tasks}, headers=admin
    )
    assert response.status_code == 201, response.get_json()


def trigger(client, admin, dag_id="slowdag") -> int:
    response = client.post(f"/api/v1/dags/{dag_id}/runs", json={}, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["run_id"]


def test_a_cancelled_try_is_in_the_history_and_gone_before_the_answer(
    client, admin, consumer, sleepy
):
    """#15.8: tries was [] after a cancel, the log said 'failed', and the function kept
    logging about 2 s after the run reported finished."""
    run_id = trigger(client, admin)
    pid = running_pid(client, admin, run_id, "nap")
    response = client.post(f"/api/v1/runs/{run_id}/cancel", headers=admin)
    assert response.status_code == 200
    assert not is_running(pid), "the run answered cancelled while its try's process ran"
    assert response.get_json()["state"] == "cancelled"
    nap = client.get(f"/api/v1/runs/{run_id}/tasks/nap", headers=admin).get_json()
    assert nap["state"] == "cancelled"
    (tried,) = nap["tries"]
    assert (tried["try_number"], tried["state"]) == (1, "cancelled")
    assert tried["error"] == "stopped: the task instance was cancelled"
    assert tried["finished_at"] >= tried["started_at"]
    log = task_log(client, admin, run_id, "nap")
    assert log.rstrip().endswith(
        "[brisa] try 1 " + "stopped: the task instance is no longer"
        " running (cancelled, marked, or its run timed out)"
    )
    after = client.get(f"/api/v1/runs/{run_id}/tasks/after", headers=admin).get_json()
    assert (after["state"], after["tries"]) == ("cancelled", [])  # never ran: no try


def test_deleting_a_dag_with_a_run_in_flight_is_refused_naming_it(client, admin, consumer, sleepy):
    """#15.6: the delete answered 204 while a run was in flight; its URL became 404 and
    the worker hit a foreign key error."""
    run_id = trigger(client, admin)
    pid = running_pid(client, admin, run_id, "nap")
    refused = client.delete("/api/v1/dags/slowdag", headers=admin)
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["details"] == {"runs": [run_id]}
    assert "cancel=true" in error["message"]
    assert is_running(pid)
    run = client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()
    assert run["state"] == "running"

    assert client.delete("/api/v1/dags/slowdag?cancel=true", headers=admin).status_code == 204
    assert not is_running(pid)
    assert client.get(f"/api/v1/runs/{run_id}", headers=admin).status_code == 404
    assert client.get("/api/v1/dags/slowdag", headers=admin).status_code == 404


def test_deleting_a_function_with_an_invoke_in_flight_is_refused(client, admin, consumer):
    deploy_source(client, admin, "sleepy", PID_THEN_SLEEP)
    invoked = client.post("/api/v1/functions/sleepy/invoke", json={}, headers=admin)
    assert invoked.status_code == 202, invoked.get_json()
    run_id = invoked.get_json()["run_id"]
    pid = running_pid(client, admin, run_id, "sleepy")
    refused = client.delete("/api/v1/functions/sleepy", headers=admin)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["details"] == {"runs": [run_id]}
    assert client.delete("/api/v1/functions/sleepy?cancel=true", headers=admin).status_code == 204
    assert not is_running(pid)
    with db.connection_context():
        assert DagRun.get_or_none(id=run_id) is None  # its invoke history went with it


def test_a_finished_dag_deletes_at_once_and_a_bad_cancel_flag_is_422(client, admin, sleepy):
    assert client.delete("/api/v1/dags/slowdag?cancel=maybe", headers=admin).status_code == 422
    assert client.delete("/api/v1/dags/slowdag", headers=admin).status_code == 204
