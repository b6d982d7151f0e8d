"""Running DAGs through the real huey consumer, on every backend."""

import pytest

from app import broker
from app.store.db import db
from app.store.models import TaskInstance
from tests.conftest import (
    PID_THEN_SLEEP,
    STOPPED,
    deploy_examples,
    deploy_source,
    dropped_messages,
    poll,
    running_pid,
    task_log,
    wait_for,
    wait_for_run,
    wait_until_gone,
)


def trigger(client, headers, dag_id, conf=None):
    response = client.post(f"/api/v1/dags/{dag_id}/runs", json={"conf": conf}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["run_id"]


def run_json(client, headers, run_id):
    return client.get(f"/api/v1/runs/{run_id}", headers=headers).get_json()


def tasks_by_id(run):
    return {t["task_id"]: t for t in run["tasks"]}


def create_dag(client, headers, dag_id, tasks):
    response = client.post("/api/v1/dags", json={"dag_id": dag_id, "tasks": tasks}, headers=headers)
    assert response.status_code == 201, response.get_json()


def test_fan_out_and_join_pass_results_downstream(client, admin, consumer):
    deploy_examples(client, admin)
    run_id = trigger(client, admin, "example_pipeline", {"name": "Ada"})
    assert wait_for_run(run_id).state == "success"
    tasks = tasks_by_id(run_json(client, admin, run_id))
    assert tasks["hello"]["result"] == {"greeting": "hello, Ada", "length": 3}
    assert tasks["double"]["result"] == {"value": 6}
    assert tasks["triple"]["result"] == {"value": 9}
    assert tasks["summarise"]["result"] == {"total": 15, "parts": {"double": 6, "triple": 9}}
    assert all(t["state"] == "success" and t["try_number"] == 1 for t in tasks.values())
    join_start = tasks["summarise"]["started_at"]
    assert join_start >= max(tasks["double"]["finished_at"], tasks["triple"]["finished_at"])


def test_a_failing_task_fails_the_run_and_its_downstream_is_upstream_failed(
    client, admin, consumer
):
    deploy_examples(client, admin)
    run_id = trigger(client, admin, "example_failure")
    assert wait_for_run(run_id).state == "failed"
    tasks = tasks_by_id(run_json(client, admin, run_id))
    assert tasks["hello"]["state"] == "success"
    assert tasks["boom"]["state"] == "failed"
    assert tasks["boom"]["error"] == "RuntimeError: this task fails on purpose"
    assert tasks["after"]["state"] == "upstream_failed"
    assert tasks["after"]["try_number"] == 0
    log = client.get(f"/api/v1/runs/{run_id}/tasks/boom/logs", headers=admin).get_json()
    assert "Traceback (most recent call last)" in log["text"]
    assert 'raise RuntimeError("this task fails on purpose")' in log["text"]
    assert "about to fail on purpose (try 1 of 1)" in log["text"]


def test_a_task_over_its_timeout_is_killed_and_failed(client, admin, consumer):
    deploy_source(client, admin, "sleepy", PID_THEN_SLEEP, timeout=1)
    create_dag(client, admin, "slow", [{"task_id": "nap", "function": "sleepy"}])
    run_id = trigger(client, admin, "slow")
    pid = running_pid(client, admin, run_id, "nap")
    assert wait_for_run(run_id).state == "failed"
    assert wait_until_gone(pid), "the try's process outlived its timeout"
    task = tasks_by_id(run_json(client, admin, run_id))["nap"]
    assert task["error"] == "timed out after 1s and was killed"


def test_a_task_timeout_in_the_spec_overrides_the_function(client, admin, consumer):
    source = "import time\ndef handler(event, context):\n    time.sleep(60)\n"
    deploy_source(client, admin, "sleepy", source, timeout=300)
    create_dag(client, admin, "slow", [{"task_id": "nap", "function": "sleepy", "timeout": 0.5}])
    run_id = trigger(client, admin, "slow")
    assert wait_for_run(run_id).state == "failed"
    assert "timed out after 0.5s" in tasks_by_id(run_json(client, admin, run_id))["nap"]["error"]


def test_logs_hold_prints_and_logging_and_can_be_tailed(client, admin, consumer):
    source = (
        "import logging, sys\n"
        "def handler(event, context):\n"
        "    print('to stdout')\n"
        "    print('to stderr', file=sys.stderr)\n"
        "    context.log.info('through the context logger')\n"
        "    logging.getLogger('mine').warning('through logging')\n"
        "    return 'done'\n"
    )
    deploy_source(client, admin, "chatty", source)
    create_dag(client, admin, "talk", [{"task_id": "speak", "function": "chatty"}])
    run_id = trigger(client, admin, "talk")
    assert wait_for_run(run_id).state == "success"
    log = client.get(f"/api/v1/runs/{run_id}/tasks/speak/logs?try=1", headers=admin).get_json()
    lines = log["text"].splitlines()
    assert lines[0] == "to stdout" and lines[1] == "to stderr"
    assert "INFO brisa.task.speak: through the context logger" in lines[2]
    assert "WARNING mine: through logging" in lines[3]
    tail = f"/api/v1/runs/{run_id}/tasks/speak/logs?offset={log['next_offset']}"
    assert client.get(tail, headers=admin).get_json()["text"] == ""


def test_a_duplicated_message_never_runs_a_try_twice(client, admin, consumer, tmp_path):
    marker = tmp_path / "runs.txt"
    source = (
        "import time\n"
        "def handler(event, context):\n"
        "    time.sleep(0.3)\n"
        "    with open(event['args']['marker'], 'a') as f:\n"
        "        f.write('ran\\n')\n"
    )
    deploy_source(client, admin, "once", source)
    tasks = [{"task_id": "t", "function": "once", "args": {"marker": str(marker)}}]
    create_dag(client, admin, "dup", tasks)
    run_id = trigger(client, admin, "dup")
    with db.connection_context():
        ti = TaskInstance.get(TaskInstance.run == run_id)
    for _ in range(3):
        broker.HueyTransport().send_try(ti.id, ti.try_number)
    assert wait_for_run(run_id).state == "success"
    wait_for(lambda: dropped_messages() == 3, what="the three duplicates dropped")
    assert marker.read_text() == "ran\n"
    assert broker.huey.pending_count() == 0


def test_a_stale_message_for_an_earlier_try_is_dropped(client, admin, consumer, tmp_path):
    marker = tmp_path / "runs.txt"
    source = (
        "def handler(event, context):\n"
        "    with open(event['args']['marker'], 'a') as f:\n"
        "        f.write(f'try {context.try_number}\\n')\n"
    )
    deploy_source(client, admin, "count", source)
    create_dag(
        client, admin, "c", [{"task_id": "t", "function": "count", "args": {"marker": str(marker)}}]
    )
    run_id = trigger(client, admin, "c")
    assert wait_for_run(run_id).state == "success"
    cleared = client.post(f"/api/v1/runs/{run_id}/tasks/t/clear", headers=admin)
    assert cleared.status_code == 200
    assert wait_for_run(run_id).state == "success"
    with db.connection_context():
        ti = TaskInstance.get(TaskInstance.run == run_id)
        assert dropped_messages() == 0
    broker.HueyTransport().send_try(ti.id, 1)  # try 1 again: stale
    wait_for(lambda: dropped_messages() == 1, what="the stale message dropped")
    assert marker.read_text() == "try 1\ntry 2\n"
    assert ti.try_number == 2


def test_retries_rerun_a_failed_try_with_its_own_log(client, admin, consumer):
    source = (
        "def handler(event, context):\n"
        "    print(f'attempt {context.try_number}')\n"
        "    if context.try_number < 2:\n"
        "        raise ValueError('not yet')\n"
        "    return context.try_number\n"
    )
    deploy_source(client, admin, "flaky", source)
    task = {"task_id": "t", "function": "flaky", "retries": 2, "retry_delay": 0.2}
    create_dag(client, admin, "retrying", [task])
    run_id = trigger(client, admin, "retrying")
    assert wait_for_run(run_id).state == "success"
    ti = tasks_by_id(run_json(client, admin, run_id))["t"]
    assert (ti["try_number"], ti["max_tries"], ti["result"]) == (2, 3, 2)
    logs = "/api/v1/runs/{}/tasks/t/logs?try={}"
    first = client.get(logs.format(run_id, 1), headers=admin).get_json()["text"]
    second = client.get(logs.format(run_id, 2), headers=admin).get_json()["text"]
    assert "attempt 1" in first and "ValueError: not yet" in first
    assert second.strip() == "attempt 2"


def test_cancel_kills_the_running_try_and_cancels_the_rest(client, admin, consumer, monkeypatch):
    monkeypatch.setenv("BRISA_HEARTBEAT", "0.2")
    from app import config

    config.current.cache_clear()
    deploy_source(client, admin, "sleepy", PID_THEN_SLEEP)
    tasks = [
        {"task_id": "a", "function": "sleepy"},
        {"task_id": "b", "function": "sleepy", "upstream": ["a"]},
    ]
    create_dag(client, admin, "long", tasks)
    run_id = trigger(client, admin, "long")
    pid = running_pid(client, admin, run_id, "a")
    response = client.post(f"/api/v1/runs/{run_id}/cancel", headers=admin)
    assert response.status_code == 200 and response.get_json()["state"] == "cancelled"
    assert {t["state"] for t in response.get_json()["tasks"]} == {"cancelled"}
    # the kill: the try's process is gone long before its 60 s sleep, and the try ended
    assert wait_until_gone(pid), "the cancelled try's process still runs"
    poll(lambda: STOPPED in task_log(client, admin, run_id, "a"), what="the try's end")
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=admin).status_code == 409


def test_invoke_waits_for_the_result(client, admin, consumer):
    deploy_source(client, admin, "echo", "def handler(event, context):\n    return event['conf']\n")
    response = client.post(
        "/api/v1/functions/echo/invoke?wait=20", json={"x": [1, 2]}, headers=admin
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["state"], body["result"], body["function"]) == ("success", {"x": [1, 2]}, "echo")


def test_invoke_without_wait_answers_202_with_the_run_url(client, admin, consumer):
    deploy_source(client, admin, "echo", "def handler(event, context):\n    return event['conf']\n")
    response = client.post("/api/v1/functions/echo/invoke", json=7, headers=admin)
    assert response.status_code == 202
    url = response.get_json()["url"]
    assert wait_for_run(response.get_json()["run_id"]).state == "success"
    assert client.get(url, headers=admin).get_json()["tasks"][0]["result"] == 7


def test_invoke_of_a_failing_function_reports_the_error(client, admin, consumer):
    deploy_source(client, admin, "bad", "def handler(event, context):\n    return 1 / 0\n")
    response = client.post("/api/v1/functions/bad/invoke?wait=20", headers=admin)
    assert response.status_code == 200
    assert response.get_json()["state"] == "failed"
    assert response.get_json()["error"] == "ZeroDivisionError: division by zero"


def test_a_run_pins_the_versions_it_was_created_with(client, admin):
    deploy_source(client, admin, "f", "def handler(event, context):\n    return 1\n")
    create_dag(client, admin, "pin", [{"task_id": "t", "function": "f"}])
    run_id = trigger(client, admin, "pin")  # no consumer: the run waits
    deploy_source(client, admin, "f", "def handler(event, context):\n    return 2\n")
    assert tasks_by_id(run_json(client, admin, run_id))["t"]["function_version"] == 1
    later = trigger(client, admin, "pin")
    assert tasks_by_id(run_json(client, admin, later))["t"]["function_version"] == 2


def test_runs_list_newest_first_with_a_cursor(client, admin):
    deploy_source(client, admin, "f", "def handler(event, context):\n    return 1\n")
    create_dag(client, admin, "many", [{"task_id": "t", "function": "f"}])
    ids = [trigger(client, admin, "many") for _ in range(5)]
    page = client.get("/api/v1/dags/many/runs?limit=2", headers=admin).get_json()
    assert [r["run_id"] for r in page["runs"]] == ids[:-3:-1]
    rest = client.get(
        f"/api/v1/dags/many/runs?limit=10&cursor={page['next_cursor']}", headers=admin
    )
    assert [r["run_id"] for r in rest.get_json()["runs"]] == ids[-3::-1]
    assert rest.get_json()["next_cursor"] is None


@pytest.mark.parametrize("conf", [None, {"nested": {"list": [1, "two", None]}}, "text", 3.5])
def test_conf_reaches_the_function_unchanged(client, admin, consumer, conf):
    deploy_source(client, admin, "echo", "def handler(event, context):\n    return event\n")
    create_dag(client, admin, "echoes", [{"task_id": "t", "function": "echo", "args": {"k": 1}}])
    run_id = trigger(client, admin, "echoes", conf)
    assert wait_for_run(run_id).state == "success"
    result = tasks_by_id(run_json(client, admin, run_id))["t"]["result"]
    assert result == {"conf": conf, "args": {"k": 1}, "upstream": {}}


def test_a_fault_in_brisa_itself_fails_the_try_instead_of_leaving_it_running(
    client, admin, consumer, monkeypatch
):
    from app.worker import try_runner as worker

    def broken(ti, settings):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(worker, "build_job", broken)
    deploy_source(client, admin, "f", "def handler(event, context):\n    return 1\n")
    create_dag(client, admin, "d", [{"task_id": "t", "function": "f"}])
    run_id = trigger(client, admin, "d")
    assert wait_for_run(run_id).state == "failed"
    error = tasks_by_id(run_json(client, admin, run_id))["t"]["error"]
    assert error == "Brisa could not run the try: RuntimeError('disk on fire')"
