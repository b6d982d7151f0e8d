"""``make run`` (``python -m app dev``) as a user runs it: a subprocess with its own
BRISA_VAR_DIR and a free port, read line by line. Quiet by default (a line per failed try
and finished run, the processes' warnings and errors), verbose on request, bound to
127.0.0.1 unless told, a busy port named before anything starts, a dead process stopping
the rest; and the Makefile's ``run`` and ``clean``."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from app.cli import devserver
from tests.system import ROOT, free_port

pytestmark = pytest.mark.e2e


class DevServer:
    """``python -m app dev ARGS`` on the embedded default in ``var_dir``; its output (stdout
    and stderr) is collected in ``lines`` as it comes."""

    def __init__(self, var_dir: Path, *args: str, **env_changes: str):
        self.port = free_port()
        self.var_dir = var_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BRISA_", "DATABASE"))}
        env = {k: v for k, v in env.items() if k not in ("REDIS_URL", "REDIS_TLS_URL")}
        env.update(
            BRISA_VAR_DIR=str(var_dir),
            PORT=str(self.port),
            PYTHONPATH=str(ROOT),
            NO_COLOR="1",
            BRISA_WORKER_THREADS="2",
            WEB_CONCURRENCY="1",
            **env_changes,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "dev", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, wanted, timeout: float = 90) -> str:
        """The first line for which ``wanted(line)`` holds, once it has been printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if wanted(line)), None)
            if found is not None:
                return found
            assert self.process.poll() is None, "\n".join(self.lines)
            time.sleep(0.1)
        raise AssertionError("not printed:\n" + "\n".join(self.lines))

    def wait_until_up(self) -> None:
        self.wait_for_line(lambda line: line.strip() == "Stop:  Ctrl-C")

    def stop(self, sig=signal.SIGINT) -> int:
        """Its exit code, once it exited (sent ``sig`` if still running) and all its output
        is in ``lines``."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(60)
        finally:
            self.process.kill()
            self.reader.join(10)

    @property
    def headers(self) -> dict:
        token = (self.var_dir / "admin_token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def api(self, method: str, path: str, **kwargs) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1{path}"
        response = requests.request(method, url, headers=self.headers, timeout=60, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()


@pytest.fixture
def dev(tmp_path):
    servers: list[DevServer] = []

    def started(*args: str, **env: str) -> DevServer:
        servers.append(DevServer(tmp_path / f"var{len(servers)}", *args, **env))
        return servers[-1]

    yield started
    for server in servers:
        server.stop()


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_make_run_is_quiet_a_line_per_run_and_failure_on_loopback_only(dev):
    server = dev()
    server.wait_until_up()
    banner = "\n".join(server.lines)
    assert "deployed the examples in functions/: " in banner
    assert f"  UI:    http://127.0.0.1:{server.port}/ (sign in with the token)" in banner
    assert "  Logs:  runs, failures, warnings; every line: make run VERBOSE=1" in banner
    assert not refused("127.0.0.1", server.port)
    assert refused("127.0.0.2", server.port)  # bound to 127.0.0.1, not every interface

    failed = server.api("POST", "/dags/example_failure/runs")["run_id"]
    ok = server.api("POST", "/functions/hello/invoke?wait=60", json={"name": "Zoë"})["run_id"]
    server.wait_for_line(lambda line: line.startswith(f"  runs | run {failed} example_failure ("))
    server.wait_for_line(lambda line: line.startswith(f"  runs | run {ok} function hello ("))
    assert server.stop() == 0

    after = server.lines[server.lines.index("  Stop:  Ctrl-C") + 1 :]
    assert any(f"  runs | run {ok} function hello (invoke): success in " in x for x in after)
    failure = next(line for line in after if f"run {failed} example_failure:" in line)
    assert failure.endswith(": boom try 1/1 failed: RuntimeError: this task fails on purpose")
    finished = next(line for line in after if f"run {failed} example_failure (" in line)
    assert finished.endswith(f"s (python -m app runs show {failed})")
    assert not [line for line in server.lines if "INFO" in line or "HTTP/1.1" in line]
    assert after[-1] == "stopping web, worker, clock"
    devserver.check_address("127.0.0.1", server.port)  # everything stopped: the port is free


def test_make_run_verbose_shows_every_line_and_binds_where_told(dev):
    server = dev("--verbose", BRISA_BIND="0.0.0.0", BRISA_LOAD_EXAMPLES="0")
    server.wait_until_up()
    assert "  Bind:  every interface (BRISA_BIND=0.0.0.0), over plain HTTP" in server.lines
    assert not refused("127.0.0.2", server.port)
    server.wait_for_line(lambda line: "[INFO] Listening at: http://0.0.0.0:" in line)
    server.wait_for_line(lambda line: line.startswith("worker | ") and "INFO:huey" in line)
    server.wait_for_line(lambda line: '"GET /healthz HTTP/1.1" 200' in line)  # access log
    assert server.stop(signal.SIGTERM) == 0


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path):
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PORT": str(port)}
        env.update(BRISA_VAR_DIR=str(tmp_path / "var"))
        env.pop("DATABASE_URL", None)
        done = subprocess.run(
            [sys.executable, "-m", "app", "dev"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stdout == ""  # no banner, no release
    assert done.stderr == (
        f"error: port {port} is in use on 127.0.0.1: set PORT (make run PORT={port + 1})\n"
    )
    assert not (tmp_path / "var").exists()


def test_a_process_that_dies_stops_the_others_with_one_line(dev):
    server = dev(BRISA_LOAD_EXAMPLES="0")
    server.wait_until_up()
    worker = child_running(server.process.pid, "app.worker.consumer")
    os.kill(worker, signal.SIGKILL)
    assert server.process.wait(60) == 1
    server.reader.join(10)  # its last lines
    assert server.lines[-1].startswith("error: worker exited (code -9); its lines above say")
    assert server.lines[-2] == "stopping web, worker, clock"
    devserver.check_address("127.0.0.1", server.port)  # web was stopped


def child_running(parent: int, command_part: str) -> int:
    """The pid of ``parent``'s child whose command line holds ``command_part``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and command_part in command:
            return int(entry.name)
    raise AssertionError(f"no child of {parent} runs {command_part}")


def make(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), *args],  # also in make test
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_run_installs_the_runtime_only_and_make_test_the_tools(tmp_path):
    venv = f"VENV={tmp_path / 'venv'}"
    run = make("-n", "run", venv)
    assert "-r requirements.txt" in run and "requirements-dev.txt" not in run
    assert run.rstrip().endswith("-m app dev")
    assert make("-n", "run", venv, "VERBOSE=1").rstrip().endswith("-m app dev --verbose")
    tests = make("-n", "test", venv)
    assert "-r requirements.txt" in tests and "-r requirements-dev.txt" in tests


def test_make_clean_removes_brisas_files_in_brisa_var_dir(tmp_path):
    for folder in ("var", "elsewhere", "shared"):
        (tmp_path / folder / "envs" / "py3.11").mkdir(parents=True)
        for name in ("brisa.db", "brisa.db-wal", "queue.db", "secret_key", "admin_token"):
            (tmp_path / folder / name).write_text("x")
    (tmp_path / "shared" / "notes.txt").write_text("not Brisa's")

    make("clean", "BRISA_VAR_DIR=elsewhere", cwd=tmp_path)
    assert not (tmp_path / "elsewhere").exists() and (tmp_path / "var" / "brisa.db").exists()
    kept = make("clean", "BRISA_VAR_DIR=shared", cwd=tmp_path)
    assert "kept shared: it holds other files" in kept
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["notes.txt"]
    make("clean", cwd=tmp_path)
    assert not (tmp_path / "var").exists()
