"""The embedded default under write contention from all three processes at once (#15.9):
the web (triggers and invokes from many clients), the worker (claims, outcomes, logs) and the
clock (ticking every second), on one SQLite file. SQLite's busy_timeout is set to 1 ms, so
nearly every concurrent write meets a held lock: none may surface "database is locked" as a
failed request, try or tick."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.system import AUTH, procfile_system, wait_for_state

NOOP = "def handler(event, context):\n    return event['conf']\n"
CLIENTS, RUNS_EACH = 6, 15


def deploy(base: str) -> None:
    body = {"name": "noop", "source": NOOP}
    assert requests.post(f"{base}/api/v1/functions", json=body, headers=AUTH, timeout=30).ok
    tasks = [
        {"task_id": "a", "function": "noop"},
        {"task_id": "b", "function": "noop", "upstream": ["a"]},
        {"task_id": "c", "function": "noop", "upstream": ["a"]},
    ]
    spec = {"dag_id": "busy", "tasks": tasks}
    assert requests.post(f"{base}/api/v1/dags", json=spec, headers=AUTH, timeout=30).ok


def client_session(base: str, client: int) -> list[tuple[int, int]]:
    """(status, run id) of each trigger and invoke this client made."""
    answers = []
    with requests.Session() as session:
        for n in range(RUNS_EACH):
            if n % 3 == 2:
                url, body = f"{base}/api/v1/functions/noop/invoke", {"n": n}
            else:
                url, body = f"{base}/api/v1/dags/busy/runs", {"conf": {"client": client}}
            response = session.post(url, json=body, headers=AUTH, timeout=60)
            answers.append((response.status_code, response.json().get("run_id")))
    return answers


@pytest.mark.e2e
def test_web_worker_and_clock_writing_at_once_never_see_database_is_locked(tmp_path):
    log_path = tmp_path / "processes.log"
    extra = {"BRISA_SQLITE_BUSY_TIMEOUT_MS": "1", "BRISA_TICK_SECONDS": "1"}
    with (
        log_path.open("w") as output,
        procfile_system("embedded", tmp_path / "var", output=output, extra_env=extra) as system,
    ):
        deploy(system.base)
        with ThreadPoolExecutor(CLIENTS) as pool:
            sessions = pool.map(lambda c: client_session(system.base, c), range(CLIENTS))
            answers = [answer for session in sessions for answer in session]
        assert {status for status, _ in answers} <= {201, 202}, answers
        states = [wait_for_state(system.base, run_id)["state"] for _, run_id in answers]
        assert states == ["success"] * CLIENTS * RUNS_EACH
    logged = log_path.read_text()
    assert "database is locked" not in logged
    assert "Traceback" not in logged
