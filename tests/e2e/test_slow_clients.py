"""Slow clients cannot take the web tier down (#16.5): twenty connections, each sending one
header line every 2 s, held every gunicorn thread, and /healthz failed 3 times in 4. In front
of web, as docker-compose.yaml runs it, nginx (infra/nginx.conf) waits for slow clients and
hands gunicorn whole requests: /healthz keeps answering through the whole attack."""

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import unavailable
from tests.system import ROOT, free_port, procfile_system

ATTACKERS, LINE_EVERY_S, ATTACK_S = 20, 2.0, 12.0


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        unavailable("nginx", FileNotFoundError("install Debian's nginx (.ci/run does)"))
    return found


def proxy_config(folder: Path, listen: int, upstream: str) -> Path:
    """infra/nginx.conf as compose mounts it, pointed at this test's web and port, its
    temporary files and pid in ``folder``."""
    config = (ROOT / "infra/nginx.conf").read_text()
    config = config.replace("server web:8000;", f"server {upstream};")
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    paths = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = config.replace("http {\n", f"http {{\n{paths}    access_log off;\n", 1)
    path = folder / "nginx.conf"
    path.write_text(f"pid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'};\n{config}")
    return path


def slow_client(port: int, stop: threading.Event) -> None:
    """Open a request and send one more header line every LINE_EVERY_S, never finishing."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        n = 0
        while not stop.wait(LINE_EVERY_S):
            try:
                sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())
            except OSError:
                return  # the proxy hung up on it (client_header_timeout): as it should
            n += 1


@pytest.mark.e2e
def test_healthz_answers_through_a_slowloris_attack(tmp_path):
    binary = nginx_binary()
    with procfile_system("embedded", tmp_path / "var") as system:
        port = free_port()
        folder = tmp_path / "nginx"
        folder.mkdir()
        upstream = system.base.removeprefix("http://")
        config = proxy_config(folder, port, upstream)
        nginx = subprocess.Popen(
            [binary, "-c", str(config), "-g", "daemon off; master_process on;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        stop = threading.Event()
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            attackers = [
                threading.Thread(target=slow_client, args=(port, stop), daemon=True)
                for _ in range(ATTACKERS)
            ]
            for attacker in attackers:
                attacker.start()
            answers = []
            started = time.monotonic()
            while time.monotonic() - started < ATTACK_S:
                try:
                    answers.append(requests.get(f"{base}/healthz", timeout=6).status_code)
                except requests.RequestException as exc:
                    answers.append(type(exc).__name__)
                time.sleep(0.5)
        finally:
            stop.set()
            nginx.terminate()
            nginx.wait(30)
    assert len(answers) >= 10 and set(answers) == {200}, answers
