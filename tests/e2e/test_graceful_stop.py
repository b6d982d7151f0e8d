"""Stopping is graceful however the signal arrives (#15.5): to the whole process group as a
terminal's Ctrl-C sends it (SIGINT), as ``docker stop`` and Heroku send it (SIGTERM), and
through a real Procfile runner (honcho, a fair stand-in for Heroku's dyno manager). A try
that can finish within the worker's shutdown timeout finishes; one that cannot is handed
back without spending a retry, and runs again once Brisa is back."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.system import (
    AUTH,
    ROOT,
    free_port,
    process_env,
    procfile_system,
    wait_for_state,
    wait_until_up,
)

NAP = (
    "import time\n"
    "def handler(event, context):\n"
    "    print('napping', flush=True)\n"
    "    if context.try_number == 1:\n"
    "        time.sleep(event['args']['s'])\n"
    "    return context.try_number\n"
)


def start_napping_run(base: str, seconds: float) -> int:
    body = {"name": "nap", "source": NAP}
    assert requests.post(f"{base}/api/v1/functions", json=body, headers=AUTH, timeout=30).ok
    task = {"task_id": "t", "function": "nap", "args": {"s": seconds}}
    spec = {"dag_id": "d", "tasks": [task]}
    assert requests.post(f"{base}/api/v1/dags", json=spec, headers=AUTH, timeout=30).ok
    run = requests.post(f"{base}/api/v1/dags/d/runs", json={}, headers=AUTH, timeout=30)
    run_id = run.json()["run_id"]
    deadline = time.monotonic() + 30
    log_url = f"{base}/api/v1/runs/{run_id}/tasks/t/logs?try=1"
    while time.monotonic() < deadline:  # the function is running: its log says so
        log = requests.get(log_url, headers=AUTH, timeout=5)
        if log.status_code == 200 and "napping" in log.json()["text"]:
            return run_id
        time.sleep(0.1)
    raise AssertionError("the try did not start")


def tries_after_restart(var_dir: Path, run_id: int, extra: dict) -> tuple[str, list]:
    with procfile_system("embedded", var_dir, extra_env=extra) as system:
        state = wait_for_state(system.base, run_id)["state"]
        task = requests.get(f"{system.base}/api/v1/runs/{run_id}/tasks/t", headers=AUTH).json()
    return state, [(t["try_number"], t["state"], t["error"]) for t in task["tries"]]


FINISHED = [(1, "success", None)]
HANDED_BACK = [(1, "handed_back", "the worker shut down"), (2, "success", None)]
CASES = [  # (try seconds, shutdown timeout, the history after the restart)
    pytest.param(3, "25", FINISHED, id="finishes-within-the-timeout"),
    pytest.param(60, "2", HANDED_BACK, id="handed-back-at-the-timeout"),
]


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize(("seconds", "timeout", "history"), CASES)
def test_a_signal_to_every_process_group(tmp_path, signum, seconds, timeout, history):
    extra = {"BRISA_SHUTDOWN_TIMEOUT": timeout}
    with procfile_system("embedded", tmp_path / "var", extra_env=extra) as system:
        run_id = start_napping_run(system.base, seconds)
        for process in system.processes:  # each Procfile process leads its own group
            os.killpg(process.pid, signum)
        codes = [process.wait(60) for process in system.processes]
    assert codes == [0, 0, 0]
    assert tries_after_restart(tmp_path / "var", run_id, extra) == ("success", history)


@pytest.mark.e2e
@pytest.mark.parametrize(("seconds", "timeout", "history"), CASES)
def test_ctrl_c_to_honcho_running_the_procfile(tmp_path, seconds, timeout, history):
    """``honcho start web worker clock`` in a terminal, then Ctrl-C: SIGINT to honcho's
    group, then honcho's SIGTERM to each process's group (and SIGKILL 5 s later, so the
    handed-back case uses a shorter shutdown timeout)."""
    port = free_port()
    env = {**process_env("embedded", tmp_path / "var", port), "BRISA_SHUTDOWN_TIMEOUT": timeout}
    release = subprocess.run([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env=env)
    assert release.returncode == 0
    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "start", "web", "worker", "clock"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the terminal's foreground group, which Ctrl-C reaches
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", [honcho])
        run_id = start_napping_run(f"http://127.0.0.1:{port}", seconds)
        os.killpg(honcho.pid, signal.SIGINT)
        output, _ = honcho.communicate(timeout=90)
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
    assert "Shutting down gracefully" in output
    extra = {"BRISA_SHUTDOWN_TIMEOUT": timeout}
    assert tries_after_restart(tmp_path / "var", run_id, extra) == ("success", history)
