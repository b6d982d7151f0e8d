"""max_active_tasks and pools, through the real worker (two threads) on every backend."""

import time

from app.store.db import db
from app.store.models import TaskInstance
from tests.conftest import deploy_source, wait_for, wait_for_run

NAP = "import time\ndef handler(event, context):\n    time.sleep(0.3)\n"
WAITS = (  # runs until the file args.flag exists
    "import os, time\n"
    "def handler(event, context):\n"
    "    while not os.path.exists(event['args']['flag']):\n"
    "        time.sleep(0.02)\n"
)


def put_dag(client, admin, dag_id, tasks, **spec):
    body = {"dag_id": dag_id, "tasks": tasks, **spec}
    response = client.put(f"/api/v1/dags/{dag_id}", json=body, headers=admin)
    assert response.status_code == 201, response.get_json()


def trigger(client, admin, dag_id) -> int:
    return client.post(f"/api/v1/dags/{dag_id}/runs", headers=admin).get_json()["run_id"]


def overlaps(run_ids) -> int:
    """How many task instances of these runs ran while another was running."""
    with db.connection_context():
        tis = sorted(
            TaskInstance.select().where(TaskInstance.run.in_(list(run_ids))),
            key=lambda ti: ti.started_at,
        )
    return sum(
        later.started_at < earlier.finished_at for earlier, later in zip(tis, tis[1:], strict=False)
    )


def ti_of(run_id: int) -> TaskInstance:
    """The task instance of a one-task run."""
    return TaskInstance.get(TaskInstance.run == run_id)


def naps(count, **fields):
    return [{"task_id": f"nap{i}", "function": "nap", **fields} for i in range(count)]


def test_without_limits_two_workers_overlap(client, admin, consumer):
    deploy_source(client, admin, "nap", NAP)
    put_dag(client, admin, "free", naps(3))
    run_id = trigger(client, admin, "free")
    assert wait_for_run(run_id).state == "success"
    assert overlaps([run_id]) >= 1  # the control: the limits below are what serialise


def test_max_active_tasks_bounds_a_dag_across_its_runs(client, admin, consumer):
    deploy_source(client, admin, "nap", NAP)
    put_dag(client, admin, "narrow", naps(2), max_active_tasks=1)
    run_ids = [trigger(client, admin, "narrow") for _ in range(2)]
    assert [wait_for_run(r).state for r in run_ids] == ["success", "success"]
    assert overlaps(run_ids) == 0


def test_max_active_tasks_counts_only_its_own_dags_tasks(client, admin, consumer, tmp_path):
    flag = tmp_path / "go"
    deploy_source(client, admin, "nap", NAP)
    deploy_source(client, admin, "waits", WAITS)
    put_dag(
        client,
        admin,
        "other",
        [{"task_id": "long", "function": "waits", "args": {"flag": str(flag)}}],
    )
    put_dag(client, admin, "narrow", naps(1), max_active_tasks=1)
    other = trigger(client, admin, "other")
    wait_for(lambda: ti_of(other).state == "running", what="the other DAG's task running")
    narrow = trigger(client, admin, "narrow")
    # not held back by the other DAG's running task: it finishes while that one still runs
    assert wait_for_run(narrow).state == "success"
    with db.connection_context():
        assert ti_of(other).state == "running"
    flag.write_text("go")
    assert wait_for_run(other).state == "success"


def test_a_pool_bounds_tasks_across_dags(client, admin, consumer):
    deploy_source(client, admin, "nap", NAP)
    assert client.put("/api/v1/pools/db", json={"slots": 1}, headers=admin).status_code == 201
    put_dag(client, admin, "a", naps(2, pool="db"))
    put_dag(client, admin, "b", naps(1), default_args={"pool": "db"})
    run_ids = [trigger(client, admin, "a"), trigger(client, admin, "b")]
    assert [wait_for_run(r).state for r in run_ids] == ["success", "success"]
    assert overlaps(run_ids) == 0


def test_a_full_pool_parks_tasks_until_it_grows(client, admin, consumer):
    deploy_source(client, admin, "nap", NAP)
    client.put("/api/v1/pools/closed", json={"slots": 0}, headers=admin)
    put_dag(client, admin, "waits", naps(1, pool="closed"))
    run_id = trigger(client, admin, "waits")
    deadline = time.monotonic() + 10
    while True:
        with db.connection_context():
            ti = TaskInstance.get(TaskInstance.run == run_id)
        if ti.parked:
            break
        assert time.monotonic() < deadline, "the try was never parked"
        time.sleep(0.05)
    assert ti.state == "queued"
    resized = client.put("/api/v1/pools/closed", json={"slots": 2}, headers=admin)
    assert resized.status_code == 200 and resized.get_json()["slots"] == 2
    assert wait_for_run(run_id).state == "success"


def test_an_unknown_pool_is_refused_at_deploy(client, admin):
    deploy_source(client, admin, "nap", NAP)
    body = {"dag_id": "x", "tasks": naps(1, pool="nowhere")}
    response = client.post("/api/v1/dags", json=body, headers=admin)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [
        {"field": "tasks[0].pool", "message": "unknown pool 'nowhere'"}
    ]


def test_pools_api(client, admin):
    assert client.put("/api/v1/pools/bad name", json={"slots": 1}, headers=admin).status_code == 422
    assert client.put("/api/v1/pools/p", json={"slots": -1}, headers=admin).status_code == 422
    client.put("/api/v1/pools/p", json={"slots": 3, "description": "db"}, headers=admin)
    assert client.get("/api/v1/pools", headers=admin).get_json() == {
        "pools": [{"name": "p", "slots": 3, "description": "db"}]
    }
    assert client.delete("/api/v1/pools/p", headers=admin).status_code == 204
    assert client.get("/api/v1/pools/p", headers=admin).status_code == 404
