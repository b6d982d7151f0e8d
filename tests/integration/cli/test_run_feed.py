"""The dev server's feed of runs (app/cli/run_feed.py), on each backend: a line per failed
try and per finished run, each once, none for what finished before the feed started."""

from app.cli.run_feed import FeedLine, RunFeed
from app.store import db
from tests.conftest import deploy_source, wait_for_run

OK = "def handler(event, context):\n    return 1\n"
BAD = "def handler(event, context):\n    raise ValueError('no')\n"


def connected(action):
    with db.db.connection_context():
        return action()


def api(client, admin, method: str, path: str, **body) -> dict:
    response = client.open(f"/api/v1{path}", method=method, json=body or None, headers=admin)
    assert response.status_code < 300, response.get_json()
    return response.get_json()


def test_each_failed_try_and_finished_run_is_one_line_once(backend, client, admin, consumer):
    deploy_source(client, admin, "ok", OK)
    deploy_source(client, admin, "bad", BAD)
    tasks = [
        {"task_id": "a", "function": "bad", "retries": 1, "retry_delay": 0.1},
        {"task_id": "b", "function": "ok", "upstream": ["a"], "trigger_rule": "all_done"},
    ]
    api(client, admin, "PUT", "/dags/feed", tasks=tasks)
    before = api(client, admin, "POST", "/functions/ok/invoke?wait=30")["run_id"]
    assert wait_for_run(before).state == "success"
    feed = connected(RunFeed)

    failed = api(client, admin, "POST", "/dags/feed/runs")["run_id"]
    assert wait_for_run(failed).state == "failed"
    invoked = api(client, admin, "POST", "/functions/ok/invoke?wait=30")["run_id"]
    assert wait_for_run(invoked).state == "success"
    lines = connected(feed.poll)

    assert [line.colour for line in lines] == ["up_for_retry", "failed", "failed", "success"]
    assert lines[:2] == [
        FeedLine(
            f"run {failed} feed: a try 1/2 failed, to be retried: ValueError: no", "up_for_retry"
        ),
        FeedLine(f"run {failed} feed: a try 2/2 failed: ValueError: no", "failed"),
    ]
    assert lines[2].text.startswith(f"run {failed} feed (manual): failed in ")
    assert lines[2].text.endswith(f"s (python -m app runs show {failed})")
    assert lines[3].text.startswith(f"run {invoked} function ok (invoke): success in ")
    assert connected(feed.poll) == []  # each once; and nothing of the run before the feed

    api(client, admin, "POST", f"/runs/{failed}/tasks/b/clear")  # the run goes on again
    assert wait_for_run(failed).state == "failed"
    again = connected(feed.poll)
    assert [line.text.split(":")[0] for line in again] == [f"run {failed} feed (manual)"]
