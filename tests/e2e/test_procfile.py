"""End to end: the Procfile's processes as real subprocesses (release, gunicorn, the huey
worker and clock), driven only over HTTP."""

import pytest
import requests

from tests.system import AUTH, deploy_examples_over_http, procfile_system, wait_for_state


@pytest.fixture(params=["postgres", "embedded"])
def system(request, tmp_path):
    with procfile_system(request.param, tmp_path / "var") as system:
        yield system.base
    assert [p.returncode for p in system.processes] == [0, 0, 0], "a process did not stop cleanly"


@pytest.mark.e2e
def test_a_dag_runs_through_the_procfile_processes(system):
    base = system
    deploy_examples_over_http(base)
    response = requests.post(
        f"{base}/api/v1/dags/example_pipeline/runs",
        json={"conf": {"name": "Brisa"}},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 201
    run = wait_for_state(base, response.json()["run_id"])
    assert run["state"] == "success"
    results = {t["task_id"]: t["result"] for t in run["tasks"]}
    assert results["summarise"] == {"total": 25, "parts": {"double": 10, "triple": 15}}

    failing = requests.post(f"{base}/api/v1/dags/example_failure/runs", headers=AUTH, timeout=10)
    run = wait_for_state(base, failing.json()["run_id"])
    assert run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in run["tasks"]} == {
        "hello": "success",
        "boom": "failed",
        "after": "upstream_failed",
    }

    invoked = requests.post(
        f"{base}/api/v1/functions/hello/invoke?wait=30",
        json={"name": "curl"},
        headers=AUTH,
        timeout=40,
    )
    assert invoked.status_code == 200
    assert invoked.json()["result"] == {"greeting": "hello, curl", "length": 4}
