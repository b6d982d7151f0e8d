"""Two clock processes at once against Postgres + Redis, for several ticks: each due run is
created exactly once, and a run due at hh:mm:00 is created within 2 s of it."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.system import AUTH, procfile_system

NOOP = "def handler(event, context):\n    return context.logical_date\n"
WATCH_S = 130  # two minute boundaries, and at least two periodic ticks of each clock


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.e2e
@pytest.mark.timeout(WATCH_S + 120)
def test_two_clocks_create_each_due_run_once_and_on_time(tmp_path):
    with procfile_system("postgres", tmp_path / "var") as system:
        base = system.base
        deploy = {"name": "noop", "source": NOOP}
        assert requests.post(f"{base}/api/v1/functions", json=deploy, headers=AUTH).ok
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
        spec = {
            "dag_id": "minutely",
            "schedule": "* * * * *",
            "start_date": iso(start),
            "catchup": True,
            "max_active_runs": 50,
            "tasks": [{"task_id": "t", "function": "noop"}],
        }
        assert requests.post(f"{base}/api/v1/dags", json=spec, headers=AUTH).status_code == 201
        system.start("clock")  # its first tick, at its start, sees the new DAG
        time.sleep(WATCH_S)
        runs = requests.get(
            f"{base}/api/v1/dags/minutely/runs?limit=100", headers=AUTH, timeout=10
        ).json()["runs"]
    now = datetime.now(UTC)
    logical = sorted(parse(r["logical_date"]) for r in runs)
    expected_count = int((now - start).total_seconds() // 60) + 1
    assert len(logical) == len(set(logical)), "a due time got two runs"
    assert logical == [start + timedelta(minutes=i) for i in range(len(logical))]
    assert len(logical) in (expected_count - 1, expected_count)  # the last may be due just now
    on_time = [
        (parse(r["created_at"]) - parse(r["logical_date"])).total_seconds()
        for r in runs
        if parse(r["logical_date"]) > start + timedelta(minutes=3)
    ]
    assert on_time, "no run fell due while the clocks ran"
    assert all(0 <= lag < 2 for lag in on_time), on_time
