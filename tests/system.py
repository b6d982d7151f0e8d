"""The Procfile's processes as real subprocesses, for the end-to-end tests and the benchmarks."""

import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

from app.cli import devserver
from tests.conftest import (
    ADMIN_TOKEN,
    FUNCTIONS_DIR,
    POSTGRES_URL,
    backend_env,
    redis_db,
    require_postgres,
    require_redis,
    reset_postgres,
)

ROOT = Path(__file__).resolve().parents[1]
E2E_REDIS_URL = redis_db("BRISA_E2E_REDIS_URL")
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(backend_name: str, var_dir: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(backend_env(backend_name, var_dir))
    if backend_name == "postgres":
        env["REDIS_URL"] = E2E_REDIS_URL
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PORT=str(port),
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        WEB_CONCURRENCY="2",
        BRISA_WORKER_THREADS="2",
    )
    return env


def wait_until_up(base: str, processes, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), "a Procfile process exited"
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or no worker answering yet
            pass
        time.sleep(0.2)
    raise AssertionError("web did not become ready")


def deploy_examples_over_http(base: str) -> None:
    for path in sorted(FUNCTIONS_DIR.glob("*.py")):
        body = {"name": path.stem, "source": path.read_text()}
        response = requests.post(f"{base}/api/v1/functions", json=body, headers=AUTH, timeout=30)
        assert response.status_code == 201, response.text
    for path in sorted(FUNCTIONS_DIR.glob("*.json")):
        spec = json.loads(path.read_text())
        response = requests.post(f"{base}/api/v1/dags", json=spec, headers=AUTH, timeout=30)
        assert response.status_code == 201, response.text


def github_headers(secret: str, body: bytes, delivery: str) -> dict:
    """The headers of a GitHub-signed webhook delivery of ``body``."""
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "push",
        "Content-Type": "application/json",
    }


def wait_for_state(base: str, run_id: int, timeout: float = 60, poll_s: float = 0.1) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = requests.get(f"{base}/api/v1/runs/{run_id}", headers=AUTH, timeout=5).json()
        if run["state"] in ("success", "failed", "cancelled"):
            return run
        time.sleep(poll_s)
    raise AssertionError(f"run {run_id} did not finish: {run}")


@dataclass
class System:
    base: str  # the web process's URL
    processes: list  # web, worker, clock
    env: dict  # their environment, to start more of them

    def start(self, process_type: str, output=None, extra_env=None):
        """One more Procfile process (a second worker or clock), stopped with the rest;
        ``extra_env`` is added to its environment (e.g. another BRISA_WORKER_THREADS)."""
        command = devserver.read_procfile(ROOT / "Procfile")[process_type]
        env = {**self.env, **(extra_env or {})}
        self.processes.append(devserver.start(command, env, output=output))
        return self.processes[-1]


@contextlib.contextmanager
def procfile_system(backend_name: str, var_dir: Path, output=None, extra_env=None):
    """Fresh database and queue, the release step run twice, then web, worker and clock;
    yields a System; stops every process on exit."""
    if backend_name == "postgres":
        require_postgres()
        require_redis(E2E_REDIS_URL)
        reset_postgres(POSTGRES_URL)
        redis.Redis.from_url(E2E_REDIS_URL).flushdb()
    port = free_port()
    env = {**process_env(backend_name, var_dir, port), **(extra_env or {})}
    procfile = devserver.read_procfile(ROOT / "Procfile")
    for _ in range(2):  # the release step is safe to run twice
        release = subprocess.run(
            ["/bin/sh", "-c", procfile["release"]], cwd=ROOT, env=env, stdout=output
        )
        assert release.returncode == 0
    processes = [
        devserver.start(procfile[name], env, output=output) for name in ("web", "worker", "clock")
    ]
    system = System(f"http://127.0.0.1:{port}", processes, env)
    try:
        wait_until_up(system.base, processes)
        yield system
    finally:
        devserver.stop(system.processes)
