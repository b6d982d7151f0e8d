"""The recovery rules, on every backend: dead workers reaped, tries handed back on shutdown,
a database outage answered with 503."""

from datetime import timedelta

from app import broker
from app.clock import periodic as clock
from app.domain.timeutil import utcnow
from app.store import db
from app.store import transitions as states
from app.store.models import DagRun, TaskInstance, TaskTry
from app.worker import try_runner as worker
from tests.conftest import ADMIN_TOKEN, backend_env, deploy_source, require_redis

SOURCE = "def handler(event, context):\n    return 1\n"


def running_try(client, admin, retries=0) -> TaskInstance:
    """A task instance claimed by a worker that then says nothing more."""
    deploy_source(client, admin, "f", SOURCE)
    task = {"task_id": "t", "function": "f", "retries": retries, "retry_delay": 1}
    client.post("/api/v1/dags", json={"dag_id": "d", "tasks": [task]}, headers=admin)
    run_id = client.post("/api/v1/dags/d/runs", headers=admin).get_json()["run_id"]
    with db.db.connection_context():
        ti = TaskInstance.get(TaskInstance.run == run_id)
        assert states.claim(ti.id, ti.try_number, "gone-host:1")
        return TaskInstance.get_by_id(ti.id)


def test_a_try_whose_heartbeat_stopped_is_failed_into_its_retry_policy(client, admin, backend):
    ti = running_try(client, admin, retries=1)
    with db.db.connection_context():
        assert clock.tick(utcnow(), 60, heartbeat_timeout_s=30)["reaped"] == 0
        assert clock.tick(utcnow() + timedelta(seconds=31), 60, 30)["reaped"] == 1
        after = TaskInstance.get_by_id(ti.id)
        (history,) = TaskTry.select().where(TaskTry.task_instance == ti.id)
        assert not states.succeed(ti.id, ti.try_number, "too late")  # the stale worker's write
    # reaped into up_for_retry, then released by the same tick (its 1 s delay is past)
    assert (after.state, after.try_number) == ("queued", 2)
    assert (history.state, history.try_number) == ("failed", 1)
    assert "gone-host:1 stopped heartbeating" in history.error


def test_a_dead_try_with_no_retries_left_fails_its_run(client, admin, backend):
    ti = running_try(client, admin)
    with db.db.connection_context():
        clock.tick(utcnow() + timedelta(seconds=31), 60, 30)
        assert TaskInstance.get_by_id(ti.id).state == "failed"
        assert ti.run.__class__.get_by_id(ti.run_id).state == "failed"


def test_a_try_handed_back_at_shutdown_does_not_spend_a_retry(client, admin, backend):
    ti = running_try(client, admin)
    broker.huey.flush()
    worker.give_back_on_shutdown(ti.id, ti.try_number)
    with db.db.connection_context():
        after = TaskInstance.get_by_id(ti.id)
        history = TaskTry.get(TaskTry.task_instance == ti.id)
    assert (after.state, after.max_tries, after.try_number) == ("up_for_retry", 2, 1)
    assert history.state == "handed_back"
    assert [(t.name, t.args) for t in broker.huey.pending()] == [("release_retry", (ti.id, 1))]


def test_a_heartbeat_after_hand_back_tells_the_try_to_stop(client, admin, backend):
    ti = running_try(client, admin)
    worker.give_back_on_shutdown(ti.id, ti.try_number)
    with db.db.connection_context():
        assert not states.heartbeat(ti.id, ti.try_number)


def test_the_api_answers_503_with_retry_after_while_the_database_is_down(tmp_path):
    from app.config import load_settings
    from app.web import create_app

    require_redis()
    env = backend_env("postgres", tmp_path / "var")
    env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens there
    down = load_settings(env)
    db.bind(down.database_url)
    broker.rebind(broker.huey, down)
    client = create_app(down).test_client()
    response = client.get("/api/v1/dags", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "5"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"].startswith("down")
    assert ready.get_json()["checks"]["queue"] == "ok"


def test_a_run_whose_finisher_died_before_dispatching_is_finished_by_the_tick(
    client, admin, backend
):
    deploy_source(client, admin, "f", SOURCE)
    tasks = [
        {"task_id": "a", "function": "f"},
        {"task_id": "b", "function": "f", "upstream": ["a"]},
    ]
    client.post("/api/v1/dags", json={"dag_id": "chain", "tasks": tasks}, headers=admin)
    run_id = client.post("/api/v1/dags/chain/runs", headers=admin).get_json()["run_id"]
    with db.db.connection_context():
        a = TaskInstance.get((TaskInstance.run == run_id) & (TaskInstance.task_id == "a"))
        # a worker ran a, committed its success, and was SIGKILLed before dispatching b
        assert states.claim(a.id, a.try_number, "doomed:1")
        assert states.succeed(a.id, a.try_number, 1)
        counts = clock.tick(utcnow(), 60, 30)
        b = TaskInstance.get((TaskInstance.run == run_id) & (TaskInstance.task_id == "b"))
        assert counts["reconciled"] == 1 and b.state == "queued"
        # and again after b: its success committed, the run never finished
        assert states.claim(b.id, b.try_number, "doomed:2")
        assert states.succeed(b.id, b.try_number, 2)
        assert clock.tick(utcnow(), 60, 30)["reconciled"] == 1
        run = DagRun.get_by_id(run_id)
        assert run.state == "success"
        assert clock.tick(utcnow(), 60, 30)["reconciled"] == 0


def test_a_database_error_before_the_function_starts_hands_the_try_back(
    client, admin, consumer, monkeypatch
):
    import peewee

    from tests.conftest import wait_for_run

    real_build_job, calls = worker.build_job, []

    def flaky_build_job(ti, settings):
        calls.append(ti.try_number)
        if len(calls) == 1:
            raise peewee.OperationalError("the database system is shutting down")
        return real_build_job(ti, settings)

    monkeypatch.setattr(worker, "build_job", flaky_build_job)
    deploy_source(client, admin, "f", SOURCE)
    client.post(
        "/api/v1/dags",
        json={"dag_id": "d", "tasks": [{"task_id": "t", "function": "f"}]},
        headers=admin,
    )
    run_id = client.post("/api/v1/dags/d/runs", headers=admin).get_json()["run_id"]
    assert wait_for_run(run_id).state == "success"
    detail = client.get(f"/api/v1/runs/{run_id}/tasks/t", headers=admin).get_json()
    assert [t["state"] for t in detail["tries"]] == ["handed_back", "success"]
    assert (detail["try_number"], detail["max_tries"]) == (2, 2)  # no retry spent
