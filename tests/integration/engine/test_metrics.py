"""/metrics in Prometheus text format, on every backend."""

import re
import time
from datetime import timedelta

from app import broker
from app.clock import periodic as clock
from app.domain.timeutil import utcnow
from app.store.db import db
from app.store.models import TaskInstance
from tests.conftest import deploy_examples, dropped_messages, wait_for, wait_for_run


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_metrics_count_runs_tasks_durations_and_dropped_messages(client, admin, consumer):
    deploy_examples(client, admin)
    run_id = client.post("/api/v1/dags/example_pipeline/runs", headers=admin).get_json()["run_id"]
    assert wait_for_run(run_id).state == "success"
    with db.connection_context():
        ti = TaskInstance.get((TaskInstance.run == run_id) & (TaskInstance.task_id == "hello"))
    broker.HueyTransport().send_try(ti.id, ti.try_number)  # a duplicate: the claim drops it
    wait_for(lambda: dropped_messages() == 1, what="the duplicate dropped")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    assert sample(text, 'brisa_runs{state="success"}') == 1
    assert sample(text, 'brisa_task_instances{state="success"}') == 4
    assert sample(text, 'brisa_task_duration_seconds_bucket{le="+Inf"}') == 4
    assert sample(text, "brisa_task_duration_seconds_count") == 4
    assert sample(text, 'brisa_task_duration_seconds_bucket{le="300"}') == 4
    assert sample(text, "brisa_task_duration_seconds_sum") > 0
    assert sample(text, "brisa_messages_dropped_total") == 1
    assert sample(text, "brisa_queue_depth") == 0
    assert "# TYPE brisa_task_duration_seconds histogram" in text


def test_the_clock_tick_is_measured(client, backend):
    with db.connection_context():
        before, started = time.time(), time.monotonic()
        clock.periodic_tick.call_local()
        took, after = time.monotonic() - started, time.time()
        clock.tick(utcnow() + timedelta(seconds=1), 60)  # not the periodic task: not counted
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "brisa_ticks_total") == 1
    # what the tick reports lies within what was seen around it
    assert 0 < sample(text, "brisa_tick_duration_seconds") <= took
    assert before <= sample(text, "brisa_tick_last_timestamp_seconds") <= after
