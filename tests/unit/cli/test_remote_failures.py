"""Every remote command, against every kind of wrong answer: one line on stderr saying what
to do, exit 1 (2 for an address that is not one), never a traceback. The servers here are
real HTTP (and not-HTTP) servers on 127.0.0.1 that answer as something other than a healthy
Brisa would; a live Brisa's own errors are in tests/e2e/test_cli.py."""

import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.cli import commands as brisa_cli
from app.cli.client import ApiError, Client, server_root
from tests.conftest import FUNCTIONS_DIR
from tests.system import free_port

ROOT = Path(__file__).resolve().parents[3]

COMMANDS = [
    ["dags", "list"],
    ["dags", "pause", "d"],
    ["dags", "unpause", "d"],
    ["dags", "trigger", "d", "--conf", '{"a": 1}'],
    ["dags", "trigger", "d", "--wait"],
    ["dags", "backfill", "d", "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"],
    ["runs", "list", "d"],
    ["runs", "show", "1"],
    ["runs", "show", "1", "--wait"],
    ["runs", "logs", "1", "t"],
    ["runs", "logs", "1", "t", "--follow"],
    ["runs", "cancel", "1"],
    ["runs", "rerun", "1"],
    ["runs", "clear", "1", "t", "--downstream"],
    ["runs", "mark", "1", "t", "success"],
    ["functions", "list"],
    ["functions", "show", "f"],
    ["functions", "invoke", "f", "--conf", "{}"],
    ["functions", "invoke", "f", "--wait", "0"],
    ["deploy", str(FUNCTIONS_DIR)],
    ["deploy", str(FUNCTIONS_DIR), "--dry-run"],
    ["trigger", "d"],  # the older spelling
]


def envelope(status: int, message: str, details=None) -> tuple:
    body = {"error": {"code": "x", "message": message, "details": details}}
    return status, "application/json", json.dumps(body)


# kind -> (status, content type, body), what the one line says
ANSWERS = {
    "an HTML 404 (a path that is not the API)": (
        (404, "text/html", "<html>Not Found</html>"),
        "answered HTTP 404 Not Found, not as Brisa's API does: BRISA_URL is Brisa's root",
    ),
    "an HTML page": ((200, "text/html", "<html>hi</html>"), "with text/html, not Brisa's JSON"),
    "another JSON API": (
        (200, "application/json", '{"status": "ok"}'),
        "answered, but not as Brisa's API does",
    ),
    "a JSON list": ((200, "application/json", "[1, 2]"), "answered, but not as Brisa's API does"),
    "an empty answer": ((200, "application/json", ""), "answered, but not as Brisa's API does"),
    "a 401 not from Brisa": (
        (401, "application/json", '{"error": "nope"}'),
        "answered HTTP 401 Unauthorized, not as Brisa's API does",
    ),
    "a plain 500": ((500, "text/plain", "oops"), "is Brisa (or a proxy in front of it) down?"),
    "a proxy's 502": ((502, "text/html", "<html>bad</html>"), "HTTP 502 Bad Gateway, not from"),
    "Brisa's 404 for a path it has no route for": (
        envelope(404, "The requested URL was not found on the server. If you entered..."),
        "has no such API path (HTTP 404): BRISA_URL is Brisa's root address",
    ),
    "Brisa's 500": (envelope(500, "internal error"), "failed: internal error (HTTP 500"),
    "Brisa's 401": (envelope(401, "unknown token"), "the token was refused (unknown token)"),
    "Brisa's 403": (envelope(403, "needs operator"), "the token's role is too low"),
    "Brisa's 404": (envelope(404, "no run 1"), "error: no run 1"),
    "Brisa's 409": (envelope(409, "only a running run"), "error: only a running run"),
    "Brisa's 422": (
        envelope(422, "1 problem(s)", [{"field": "conf", "message": "not an object"}]),
        "error: 1 problem(s)\n  conf: not an object",
    ),
}


class StubServer:
    """An HTTP server on 127.0.0.1 answering every request with ``answer``."""

    def __init__(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def _answer(self):
                stub.calls.release()
                status, content_type, body = stub.answer
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = _answer

        self.answer = (200, "application/json", "{}")
        self.calls = threading.Semaphore(0)  # released by each request answered
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stub():
    server = StubServer()
    yield server
    server.close()


def run_cli(args, capsys) -> tuple[int, str]:
    code = brisa_cli.main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


@pytest.mark.parametrize("kind", ANSWERS)
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(w for w in a if "/" not in w))
def test_a_wrong_answer_is_one_line_and_exit_1(args, kind, stub, capsys, monkeypatch):
    monkeypatch.delenv("BRISA_URL", raising=False)
    stub.answer, says = ANSWERS[kind]
    code, err = run_cli([*args, "--url", stub.url, "--token", "brisa_x"], capsys)
    assert code == 1
    assert says in err
    assert err.count("\n") == 1 + says.count("\n"), err


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(w for w in a if "/" not in w))
def test_brisas_401_without_a_token_says_set_one(args, stub, capsys, monkeypatch):
    monkeypatch.delenv("BRISA_TOKEN", raising=False)
    stub.answer = envelope(401, "a token is required")
    code, err = run_cli([*args, "--url", stub.url], capsys)
    assert (code, err) == (1, "error: no token: set BRISA_TOKEN or pass --token\n")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(w for w in a if "/" not in w))
def test_nobody_listening_is_one_line_and_exit_1(args, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, err = run_cli([*args, "--url", url, "--token", "brisa_x"], capsys)
    assert code == 1
    assert err == (
        f"error: cannot reach Brisa at {url}: Connection refused "
        "(is it running? `make run` starts one)\n"
    )


@pytest.mark.parametrize(
    "url", ["localhost:8000", "ftp://127.0.0.1", "http://", "http://127.0.0.1:port"]
)
@pytest.mark.parametrize("args", COMMANDS[:3], ids=" ".join)
def test_an_address_that_is_not_one_is_a_usage_error(args, url, capsys):
    code, err = run_cli([*args, "--url", url], capsys)
    assert code == 2
    assert err.startswith(f"error: --url: {url!r} is not an http:// or https:// address")


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/api/v1", "http://127.0.0.1:8000"),  # the API's prefix pasted
        ("https://brisa.example.com/api/v1/", "https://brisa.example.com"),
        (" https://brisa.example.com/brisa/ ", "https://brisa.example.com/brisa"),
    ],
)
def test_the_address_is_the_servers_root(given, root):
    assert server_root(given) == root


def test_the_api_prefix_in_the_address_still_reaches_the_api(stub, capsys):
    stub.answer = (200, "application/json", '{"dags": []}')
    assert brisa_cli.main(["dags", "list", "--url", f"{stub.url}/api/v1/", "--token", "t"]) == 0
    assert (
        capsys.readouterr().out.split()
        == "DAG PAUSED SCHEDULE VERSION LAST RUN STATE NEXT RUN".split()
    )


class OneShotServer(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 whose handler is ``respond(socket)``; ``accepted`` is set
    when a connection came."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, respond):
        self.accepted = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                server.accepted.set()
                respond(self.request)

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def hang(connection: socket.socket) -> None:
    connection.recv(65536)
    connection.recv(65536)  # the client never sends more: waits until it goes


@pytest.mark.parametrize(
    ("respond", "says"),
    [
        (
            lambda c: (c.recv(65536), c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")),
            "did not answer in HTTP",
        ),
        (lambda c: c.recv(65536), "cannot reach Brisa at"),  # closes without an answer
    ],
    ids=["another protocol", "closed without an answer"],
)
def test_a_server_that_does_not_speak_http_is_one_line(respond, says, capsys):
    server = OneShotServer(respond)
    try:
        code, err = run_cli(["dags", "list", "--url", server.url], capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1 and says in err and err.count("\n") == 1


def test_a_server_that_never_answers_is_a_timeout():
    server = OneShotServer(hang)
    try:
        with pytest.raises(ApiError, match=r"did not answer within 0.3s"):
            Client(server.url, "t", timeout=0.3).get("/dags")
    finally:
        server.shutdown()
        server.server_close()


def interrupted(args: list[str], called) -> subprocess.CompletedProcess:
    """``python -m app ARGS`` sent SIGINT (Ctrl-C) once ``called()`` returns (True: the
    command is at the point to interrupt)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BRISA_TOKEN": "t"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert called(), "the command never called"
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    return subprocess.CompletedProcess(args, process.returncode, "", err)


def test_ctrl_c_during_a_call_is_one_line_and_exit_130():
    server = OneShotServer(hang)
    try:
        done = interrupted(["dags", "list", "--url", server.url], lambda: server.accepted.wait(30))
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode, done.stderr) == (130, "interrupted\n")


def test_ctrl_c_while_waiting_for_a_run_says_it_goes_on(stub):
    running = {"run_id": 7, "state": "running", "tasks": [{"state": "running"}]}
    stub.answer = (200, "application/json", json.dumps(running))
    while stub.calls.acquire(blocking=False):  # forget the calls of the tests before
        pass
    polled_twice = lambda: all(stub.calls.acquire(timeout=30) for _ in range(2))  # noqa: E731
    done = interrupted(["runs", "show", "7", "--wait", "--url", stub.url], polled_twice)
    assert done.returncode == 130
    assert done.stderr.splitlines()[-1] == (
        "interrupted: stopped waiting; run 7 goes on "
        "(`python -m app runs show 7 --wait` waits again)"
    )
