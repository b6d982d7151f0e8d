"""Two clock processes at once against Postgres + Redis, across two minute boundaries: each
due run is created exactly once, in order, and never before it is due. (That a run falling
due between ticks is sent as a message with its due time as ETA is
tests/integration/clock/test_scheduling.py's.)"""

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.conftest import poll
from tests.system import AUTH, procfile_system

NOOP = "def handler(event, context):\n    return context.logical_date\n"
WATCH_S = 130  # the deadline for two minute boundaries to pass and their runs to appear


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def runs_through(base: str, last_due: datetime) -> list[dict]:
    """The DAG's runs once one is for ``last_due`` or later; [] before."""
    url = f"{base}/api/v1/dags/minutely/runs?limit=100"
    runs = requests.get(url, headers=AUTH, timeout=10).json()["runs"]
    return runs if any(parse(r["logical_date"]) >= last_due for r in runs) else []


@pytest.mark.e2e
@pytest.mark.timeout(WATCH_S + 120)
def test_two_clocks_create_each_due_run_once_and_never_early(tmp_path):
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
        # start + 3 min is the current minute: the next two fall due while both clocks run
        last_due = start + timedelta(minutes=5)
        runs = poll(lambda: runs_through(base, last_due), WATCH_S, "the runs of two minutes")
    logical = sorted(parse(r["logical_date"]) for r in runs)
    assert len(logical) == len(set(logical)), "a due time got two runs"
    assert logical == [start + timedelta(minutes=i) for i in range(len(logical))]
    early = [r for r in runs if parse(r["created_at"]) < parse(r["logical_date"])]
    assert not early, "a run was created before it was due"
