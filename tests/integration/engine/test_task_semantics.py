"""Trigger rules, skips and branches, retries, marks, reruns, max_active_runs, callbacks and
dagrun_timeout, through the real worker on every backend."""

from datetime import datetime, timedelta

import pytest

from app.clock import periodic as clock
from app.domain.timeutil import utcnow
from app.store.db import db
from app.store.models import DagRun
from tests.conftest import (
    PID_THEN_SLEEP,
    STOPPED,
    deploy_source,
    poll,
    running_pid,
    task_log,
    wait_for,
    wait_for_run,
    wait_until_gone,
)

OK = "def handler(event, context):\n    return 'ok'\n"
BAD = "def handler(event, context):\n    raise ValueError('bad')\n"
SKIP = "def handler(event, context):\n    context.skip('nothing to do')\n"


@pytest.fixture
def functions(client, admin):
    for name, source in {"ok": OK, "bad": BAD, "skip": SKIP, "sleep": PID_THEN_SLEEP}.items():
        deploy_source(client, admin, name, source)


def put_dag(client, admin, dag_id, tasks, **spec):
    body = {"dag_id": dag_id, "tasks": tasks, **spec}
    response = client.put(f"/api/v1/dags/{dag_id}", json=body, headers=admin)
    assert response.status_code in (200, 201), response.get_json()


def trigger(client, admin, dag_id, conf=None):
    response = client.post(f"/api/v1/dags/{dag_id}/runs", json={"conf": conf}, headers=admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["run_id"]


def task_states(client, admin, run_id) -> dict:
    run = client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()
    return {t["task_id"]: t["state"] for t in run["tasks"]}


def task(task_id, function, upstream=(), **fields):
    return {"task_id": task_id, "function": function, "upstream": list(upstream), **fields}


# (task, trigger rule, upstream among good/broken/skipper, expected state)
RULE_CASES = [
    ("all_success", "all_success", ["good"], "success"),
    ("all_success_fails", "all_success", ["good", "broken"], "upstream_failed"),
    ("all_success_skips", "all_success", ["good", "skipper"], "skipped"),
    ("all_failed", "all_failed", ["broken"], "success"),
    ("all_failed_skips", "all_failed", ["good", "broken"], "skipped"),
    ("all_done", "all_done", ["good", "broken", "skipper"], "success"),
    ("one_success", "one_success", ["good", "broken"], "success"),
    ("one_success_none", "one_success", ["broken", "skipper"], "upstream_failed"),
    ("one_failed", "one_failed", ["good", "broken"], "success"),
    ("one_failed_none", "one_failed", ["good", "skipper"], "skipped"),
    ("none_failed", "none_failed", ["good", "skipper"], "success"),
    ("none_failed_fails", "none_failed", ["good", "broken"], "upstream_failed"),
    ("min_one", "none_failed_min_one_success", ["good", "skipper"], "success"),
    ("min_one_none", "none_failed_min_one_success", ["skipper"], "skipped"),
    ("none_skipped", "none_skipped", ["good", "broken"], "success"),
    ("none_skipped_skips", "none_skipped", ["good", "skipper"], "skipped"),
    ("always", "always", ["broken", "skipper"], "success"),
]


def test_every_trigger_rule_against_success_failure_and_skip(client, admin, consumer, functions):
    tasks = [task("good", "ok"), task("broken", "bad"), task("skipper", "skip")]
    tasks += [task(name, "ok", up, trigger_rule=rule) for name, rule, up, _ in RULE_CASES]
    put_dag(client, admin, "rules", tasks)
    run_id = trigger(client, admin, "rules")
    assert wait_for_run(run_id).state == "failed"
    expected = {"good": "success", "broken": "failed", "skipper": "skipped"}
    expected |= {name: state for name, _, _, state in RULE_CASES}
    assert task_states(client, admin, run_id) == expected


def test_skips_propagate_downstream_and_the_run_succeeds(client, admin, consumer, functions):
    tasks = [task("skipper", "skip"), task("next", "ok", ["skipper"]), task("last", "ok", ["next"])]
    put_dag(client, admin, "skips", tasks)
    run_id = trigger(client, admin, "skips")
    assert wait_for_run(run_id).state == "success"
    assert task_states(client, admin, run_id) == {
        "skipper": "skipped",
        "next": "skipped",
        "last": "skipped",
    }
    detail = client.get(f"/api/v1/runs/{run_id}/tasks/skipper", headers=admin).get_json()
    assert detail["error"] == "skipped: nothing to do"


def test_a_branch_runs_only_the_chosen_downstream(client, admin, consumer):
    chooser = (
        "def handler(event, context):\n"
        "    context.branch(event['conf']['go'])\n"
        "    return event['conf']['go']\n"
    )
    deploy_source(client, admin, "chooser", chooser)
    deploy_source(client, admin, "ok", OK)
    tasks = [
        task("choose", "chooser"),
        task("left", "ok", ["choose"]),
        task("right", "ok", ["choose"]),
        task("after_right", "ok", ["right"]),
        task("join", "ok", ["left", "right"], trigger_rule="none_failed_min_one_success"),
    ]
    put_dag(client, admin, "branchy", tasks)
    run_id = trigger(client, admin, "branchy", {"go": "left"})
    assert wait_for_run(run_id).state == "success"
    assert task_states(client, admin, run_id) == {
        "choose": "success",
        "left": "success",
        "right": "skipped",
        "after_right": "skipped",
        "join": "success",
    }


def test_a_branch_to_a_task_that_is_not_downstream_fails(client, admin, consumer):
    deploy_source(client, admin, "lost", "def handler(e, c):\n    c.branch(['nowhere'])\n")
    deploy_source(client, admin, "ok", OK)
    put_dag(client, admin, "lost", [task("choose", "lost"), task("next", "ok", ["choose"])])
    run_id = trigger(client, admin, "lost")
    assert wait_for_run(run_id).state == "failed"
    detail = client.get(f"/api/v1/runs/{run_id}/tasks/choose", headers=admin).get_json()
    assert "not downstream" in detail["error"]


def test_retries_with_backoff_record_each_try_and_its_gap(client, admin, consumer, functions):
    spec_task = task("t", "bad", retries=2, retry_delay=0.5, retry_backoff=True, max_retry_delay=5)
    put_dag(client, admin, "backoff", [spec_task])
    run_id = trigger(client, admin, "backoff")
    assert wait_for_run(run_id, timeout=60).state == "failed"
    detail = client.get(f"/api/v1/runs/{run_id}/tasks/t", headers=admin).get_json()
    assert (detail["try_number"], detail["max_tries"]) == (3, 3)
    tries = detail["tries"]
    assert [t["try_number"] for t in tries] == [1, 2, 3]
    assert all(t["state"] == "failed" and t["error"] == "ValueError: bad" for t in tries)
    starts = [datetime.fromisoformat(t["started_at"][:-1]) for t in tries]
    ends = [datetime.fromisoformat(t["finished_at"][:-1]) for t in tries]
    first_gap = (starts[1] - ends[0]).total_seconds()
    second_gap = (starts[2] - ends[1]).total_seconds()
    assert first_gap >= 0.5  # 0.5 s doubled per try, with jitter: [0.5, 1) then [1, 2)
    assert second_gap >= 1.0
    for number in (1, 2, 3):
        log = client.get(f"/api/v1/runs/{run_id}/tasks/t/logs?try={number}", headers=admin)
        assert "ValueError: bad" in log.get_json()["text"]


def test_mark_failed_fails_the_run(client, admin, consumer, functions):
    put_dag(client, admin, "markf", [task("fine", "ok")])
    run_id = trigger(client, admin, "markf")
    assert wait_for_run(run_id).state == "success"
    response = client.post(
        f"/api/v1/runs/{run_id}/tasks/fine/mark", json={"state": "failed"}, headers=admin
    )
    assert response.get_json()["state"] == "failed"
    assert wait_for_run(run_id).state == "failed"
    bad = client.post(
        f"/api/v1/runs/{run_id}/tasks/fine/mark", json={"state": "odd"}, headers=admin
    )
    assert bad.status_code == 422


def test_rerun_failed_runs_the_failed_and_upstream_failed_tasks_again(
    client, admin, consumer, tmp_path
):
    flag = tmp_path / "healed"
    source = (
        "import os\n"
        "def handler(event, context):\n"
        "    if not os.path.exists(event['args']['flag']):\n"
        "        raise RuntimeError('not yet')\n"
        "    return 'healed'\n"
    )
    deploy_source(client, admin, "heals", source)
    deploy_source(client, admin, "ok", OK)
    tasks = [
        task("a", "ok"),
        task("b", "heals", ["a"], args={"flag": str(flag)}),
        task("c", "ok", ["b"]),
    ]
    put_dag(client, admin, "rerun", tasks)
    run_id = trigger(client, admin, "rerun")
    assert wait_for_run(run_id).state == "failed"
    flag.write_text("yes")
    response = client.post(f"/api/v1/runs/{run_id}/rerun", headers=admin)
    assert sorted(response.get_json()["cleared"]) == ["b", "c"]
    assert wait_for_run(run_id).state == "success"
    assert task_states(client, admin, run_id) == {"a": "success", "b": "success", "c": "success"}
    detail = client.get(f"/api/v1/runs/{run_id}/tasks/b", headers=admin).get_json()
    assert (detail["try_number"], detail["max_tries"]) == (2, 2)  # cleared: one more try
    assert client.post(f"/api/v1/runs/{run_id}/rerun", headers=admin).status_code == 409


def test_max_active_runs_makes_further_runs_wait_queued(client, admin, consumer, functions):
    put_dag(
        client, admin, "one_at_a_time", [task("nap", "sleep", args={"s": 0.3})], max_active_runs=1
    )
    first, second, third = (trigger(client, admin, "one_at_a_time") for _ in range(3))
    states_now = [
        client.get(f"/api/v1/runs/{r}", headers=admin).get_json()["state"] for r in (second, third)
    ]
    assert states_now == ["queued", "queued"]
    runs = [wait_for_run(r) for r in (first, second, third)]
    assert [r.state for r in runs] == ["success"] * 3
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later.started_at >= earlier.finished_at


def test_a_paused_dag_keeps_triggered_runs_queued_until_unpaused(
    client, admin, consumer, functions
):
    put_dag(client, admin, "paused", [task("t", "ok")])
    client.patch("/api/v1/dags/paused", json={"paused": True}, headers=admin)
    run_id = trigger(client, admin, "paused")
    assert client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()["state"] == "queued"
    client.patch("/api/v1/dags/paused", json={"paused": False}, headers=admin)
    assert wait_for_run(run_id).state == "success"


def test_on_failure_calls_the_function_with_the_run_summary(client, admin, consumer, functions):
    deploy_source(
        client, admin, "notify", "def handler(event, context):\n    return event['conf']\n"
    )
    tasks = [task("broken", "bad"), task("after", "ok", ["broken"])]
    put_dag(client, admin, "alerting", tasks, on_failure="notify", on_success="notify")
    run_id = trigger(client, admin, "alerting")
    assert wait_for_run(run_id).state == "failed"
    callback = wait_for(lambda: DagRun.get_or_none(DagRun.run_type == "callback"))
    finished = wait_for_run(callback.id)
    assert finished.state == "success"
    summary = callback.conf
    assert summary["dag_id"] == "alerting" and summary["run_id"] == run_id
    assert summary["state"] == "failed" and summary["failed_tasks"] == ["broken", "after"]


def test_dagrun_timeout_fails_the_run_and_kills_what_runs(
    client, admin, consumer, functions, monkeypatch
):
    monkeypatch.setenv("BRISA_HEARTBEAT", "0.2")
    from app import config

    config.current.cache_clear()
    tasks = [task("nap", "sleep"), task("after", "ok", ["nap"])]
    put_dag(client, admin, "slowpoke", tasks, dagrun_timeout=30)
    run_id = trigger(client, admin, "slowpoke")
    pid = running_pid(client, admin, run_id, "nap")
    with db.connection_context():
        assert clock.tick(utcnow(), 60)["timed_out"] == 0
        late = utcnow() + timedelta(seconds=31)
        assert clock.tick(late, 60, heartbeat_timeout_s=3600)["timed_out"] == 1  # not reaped
    assert wait_for_run(run_id).state == "failed"
    assert task_states(client, admin, run_id) == {"nap": "failed", "after": "failed"}
    detail = client.get(f"/api/v1/runs/{run_id}/tasks/nap", headers=admin).get_json()
    assert detail["error"] == "the run exceeded its dagrun_timeout"
    # the kill: the try's process is gone long before its 60 s sleep, and the try ended
    assert wait_until_gone(pid), "the timed-out try's process still runs"
    poll(lambda: STOPPED in task_log(client, admin, run_id, "nap"), what="the try's end")


HEALS = (
    "import os\n"
    "def handler(event, context):\n"
    "    if not os.path.exists(event['args']['flag']):\n"
    "        raise RuntimeError('not yet')\n"
    "    return 'healed'\n"
)


@pytest.mark.parametrize("how", ["clear", "mark"])
def test_after_a_clear_or_mark_the_downstream_is_decided_again(
    client, admin, consumer, tmp_path, how
):
    """#15.7: a -> b, a fails, b upstream_failed; clearing a alone (no downstream) left b
    upstream_failed with try 0 and the run failed for good. Now b runs once a succeeds."""
    flag = tmp_path / "healed"
    deploy_source(client, admin, "heals", HEALS)
    deploy_source(client, admin, "ok", OK)
    put_dag(
        client, admin, "ab", [task("a", "heals", args={"flag": str(flag)}), task("b", "ok", ["a"])]
    )
    run_id = trigger(client, admin, "ab")
    assert wait_for_run(run_id).state == "failed"
    assert task_states(client, admin, run_id) == {"a": "failed", "b": "upstream_failed"}
    flag.write_text("yes")
    if how == "clear":
        response = client.post(f"/api/v1/runs/{run_id}/tasks/a/clear", headers=admin)
        assert response.get_json()["cleared"] == ["a"]
    else:
        body = {"state": "success"}
        response = client.post(f"/api/v1/runs/{run_id}/tasks/a/mark", json=body, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert wait_for_run(run_id).state == "success"
    assert task_states(client, admin, run_id) == {"a": "success", "b": "success"}
    b = client.get(f"/api/v1/runs/{run_id}/tasks/b", headers=admin).get_json()
    assert (b["try_number"], b["result"]) == (1, "ok")


def test_a_clear_leaves_alone_what_another_branch_skipped(client, admin, consumer):
    """Only what the cleared task decided is decided again: a task skipped by a branch that
    is not cleared stays skipped."""
    chooser = "def handler(event, context):\n    context.branch(['left'])\n"
    deploy_source(client, admin, "chooser", chooser)
    deploy_source(client, admin, "ok", OK)
    tasks = [
        task("choose", "chooser"),
        task("other", "ok"),
        task("left", "ok", ["choose"]),
        task("right", "ok", ["choose", "other"]),
    ]
    put_dag(client, admin, "branch_clear", tasks)
    run_id = trigger(client, admin, "branch_clear")
    assert wait_for_run(run_id).state == "success"
    assert task_states(client, admin, run_id)["right"] == "skipped"
    response = client.post(f"/api/v1/runs/{run_id}/tasks/other/clear", headers=admin)
    assert response.status_code == 200
    assert wait_for_run(run_id).state == "success"
    other = client.get(f"/api/v1/runs/{run_id}/tasks/other", headers=admin).get_json()
    assert other["try_number"] == 2  # it ran again
    right = client.get(f"/api/v1/runs/{run_id}/tasks/right", headers=admin).get_json()
    assert (right["state"], right["try_number"]) == ("skipped", 0)
    assert right["error"] == "not chosen by the branch of 'choose'"
