"""Webhook deliveries and async invocations with callbacks, through the real worker."""

import dataclasses
import hashlib
import hmac
import io
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import broker, config
from app.clock import periodic as clock
from app.domain.timeutil import utcnow
from app.engine import webhooks
from app.store.db import db
from app.store.models import DagRun
from tests.conftest import deploy_source, poll, wait_for_run

ECHO = (
    "def handler(event, context):\n"
    "    return {'conf': event['conf'], 'trigger': event.get('trigger')}\n"
)


@pytest.fixture
def hooked(client, admin):
    deploy_source(client, admin, "echo", ECHO)
    spec = {"dag_id": "hooked", "tasks": [{"task_id": "t", "function": "echo"}]}
    created = client.post("/api/v1/dags", json=spec, headers=admin).get_json()
    return created["webhook_secret"]


def github_headers(secret: str, body: bytes, delivery="d-1", event="push") -> dict:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": event,
        "Content-Type": "application/json",
    }


def run_count() -> int:
    with db.connection_context():
        return DagRun.select().count()


def test_the_secret_is_shown_once_and_rotates(client, admin, hooked):
    assert hooked.startswith("whsec_")
    assert "webhook_secret" not in client.get("/api/v1/dags/hooked", headers=admin).get_json()
    rotated = client.post("/api/v1/dags/hooked/webhook-secret", headers=admin).get_json()
    assert rotated["webhook_secret"] != hooked
    body = b"{}"
    old = client.post("/hooks/hooked", data=body, headers=github_headers(hooked, body))
    assert old.status_code == 401


def test_a_github_delivery_starts_a_run_with_the_body_as_conf(client, admin, hooked, consumer):
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    response = client.post("/hooks/hooked", data=body, headers=github_headers(hooked, body))
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["status_url"] == f"/api/v1/runs/{answer['run_id']}"
    assert wait_for_run(answer["run_id"]).state == "success"
    result = client.get(answer["status_url"], headers=admin).get_json()["tasks"][0]["result"]
    assert result["conf"] == {"ref": "refs/heads/main"}
    assert result["trigger"]["scheme"] == "github"
    assert result["trigger"]["headers"]["X-GitHub-Event"] == "push"


def test_a_standard_webhooks_delivery_with_a_text_body(client, hooked, consumer):
    body = b"plain text, not JSON"
    headers = webhooks.standard_headers(hooked, "msg_42", body)
    response = client.post("/hooks/hooked", data=body, headers=headers)
    assert response.status_code == 202
    run = wait_for_run(response.get_json()["run_id"])
    assert (run.state, run.conf, run.run_type) == ("success", "plain text, not JSON", "webhook")


def test_a_repeated_delivery_returns_the_first_run(client, hooked):
    body = b'{"n": 1}'
    first = client.post("/hooks/hooked", data=body, headers=github_headers(hooked, body, "same"))
    again = client.post("/hooks/hooked", data=body, headers=github_headers(hooked, body, "same"))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["run_id"] == first.get_json()["run_id"]
    assert again.get_json()["duplicate"] is True
    assert run_count() == 1


def test_a_replay_with_an_unsigned_delivery_header_is_still_a_duplicate(client, hooked):
    """#16.3: a Standard Webhooks delivery re-sent with X-GitHub-Delivery: attacker-1 (then
    attacker-2) made a new run each time; the key comes from the signed webhook-id."""
    body = b'{"n": 1}'
    signed = webhooks.standard_headers(hooked, "msg_1", body)
    first = client.post("/hooks/hooked", data=body, headers=signed)
    replays = [
        client.post("/hooks/hooked", data=body, headers={**signed, "X-GitHub-Delivery": forged})
        for forged in ("attacker-1", "attacker-2")
    ]
    assert [r.status_code for r in [first, *replays]] == [202, 200, 200]
    assert {r.get_json()["run_id"] for r in replays} == {first.get_json()["run_id"]}
    assert run_count() == 1


@pytest.mark.parametrize("fault", ["wrong secret", "tampered", "stale", "no signature"])
def test_a_bad_delivery_is_401_and_creates_nothing(client, hooked, fault):
    body = b'{"n": 1}'
    if fault == "wrong secret":
        headers = github_headers(webhooks.new_secret(), body)
    elif fault == "tampered":
        headers = github_headers(hooked, body)
        body = b'{"n": 2}'
    elif fault == "stale":
        headers = webhooks.standard_headers(hooked, "m", body, now=time.time() - 600)
    else:
        headers = {"X-GitHub-Delivery": "x", "Content-Type": "application/json"}
    response = client.post("/hooks/hooked", data=body, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert run_count() == 0


def test_a_paused_dag_refuses_deliveries_with_409(client, admin, hooked):
    client.patch("/api/v1/dags/hooked", json={"paused": True}, headers=admin)
    body = b"{}"
    assert (
        client.post("/hooks/hooked", data=body, headers=github_headers(hooked, body)).status_code
        == 409
    )
    assert run_count() == 0


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 3 * 1024 * 1024])
def test_a_chunked_body_over_the_cap_is_413_not_cut(client, hooked, size):
    """#16.10: a chunked delivery (no Content-Length) over 1 MiB was cut at the cap and
    answered 401 (the signature of the cut body did not match)."""
    body = b"x" * size
    headers = {**github_headers(hooked, body), "Transfer-Encoding": "chunked"}
    environ = {"wsgi.input_terminated": True}
    response = client.post(
        "/hooks/hooked", input_stream=io.BytesIO(body), headers=headers, environ_base=environ
    )
    assert response.status_code == 413
    assert run_count() == 0


def test_a_chunked_body_at_the_cap_is_read_whole(client, hooked):
    body = b"y" * (1024 * 1024)
    headers = {**github_headers(hooked, body), "Transfer-Encoding": "chunked"}
    environ = {"wsgi.input_terminated": True}
    response = client.post(
        "/hooks/hooked", input_stream=io.BytesIO(body), headers=headers, environ_base=environ
    )
    assert response.status_code == 202, response.get_json()


def test_an_unknown_dag_is_404_and_a_huge_body_413(client, hooked):
    assert client.post("/hooks/nope", data=b"{}").status_code == 404
    huge = b"x" * (2 * 1024 * 1024)
    assert (
        client.post("/hooks/hooked", data=huge, headers=github_headers(hooked, huge)).status_code
        == 413
    )


class Receiver(BaseHTTPRequestHandler):
    """Fails the first ``failures`` POSTs with 503, then records and accepts."""

    failures = 0
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        if len(Receiver.received) <= Receiver.failures:
            self.send_response(503)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_allowed(client, monkeypatch):
    """Callbacks may reach 127.0.0.1, as BRISA_EGRESS_ALLOW=127.0.0.1 lets them (the API's
    settings and the worker's)."""
    settings = client.application.config["BRISA"]
    client.application.config["BRISA"] = dataclasses.replace(settings, egress_allow="127.0.0.1")
    monkeypatch.setenv("BRISA_EGRESS_ALLOW", "127.0.0.1")
    config.current.cache_clear()
    yield
    config.current.cache_clear()


@pytest.fixture
def receiver(loopback_allowed):
    Receiver.received = []
    Receiver.failures = 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/done"
    server.shutdown()


def test_an_async_invocation_calls_back_signed_and_retries(client, admin, consumer, receiver):
    deploy_source(client, admin, "double", "def handler(e, c):\n    return e['conf'] * 2\n")
    response = client.post(
        "/api/v1/functions/double/invoke", json=21, headers={**admin, "X-Callback-Url": receiver}
    )
    assert response.status_code == 202
    run_id = response.get_json()["run_id"]
    deadline = time.monotonic() + 30
    while len(Receiver.received) < 3:
        assert time.monotonic() < deadline, Receiver.received
        time.sleep(0.1)
    headers, body = Receiver.received[-1]
    payload = json.loads(body)
    assert (payload["run_id"], payload["state"], payload["result"]) == (run_id, "success", 42)
    secret = client.get("/api/v1/callbacks/secret", headers=admin).get_json()["secret"]
    lower = {k.lower(): v for k, v in headers.items()}
    assert webhooks.verify(secret, body, lower) == "standard"
    assert (
        len(
            {
                h["webhook-id"] if "webhook-id" in h else h["Webhook-Id"]
                for h, _ in Receiver.received
            }
        )
        == 1
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://x", "must be an http(s) URL"),
        ("http://127.0.0.1:8799/cb", "refused: 127.0.0.1 is a loopback address"),
        ("http://localhost:8799/cb", "refused: localhost is a loopback name"),
        ("http://[::ffff:127.0.0.1]/cb", "refused: 127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1", "not a valid URL"),
    ],
)
def test_a_callback_url_to_a_private_address_is_422_at_once(client, admin, url, reason):
    """#16.1: loopback, localhost, mapped IPv6 and the metadata address were accepted (202)
    and POSTed to; a broken IPv6 literal was a 500."""
    deploy_source(client, admin, "double", "def handler(e, c):\n    return 1\n")
    response = client.post(
        "/api/v1/functions/double/invoke", headers={**admin, "X-Callback-Url": url}
    )
    assert response.status_code == 422
    assert reason in response.get_json()["error"]["details"][0]["message"]
    assert run_count() == 0


class Redirector(BaseHTTPRequestHandler):
    """Answers every POST with a 302 to ``target``."""

    target = ""
    posts = 0

    def do_POST(self):
        Redirector.posts += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(302)
        self.send_header("Location", Redirector.target)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_name_resolving_to_loopback_is_refused_after_dns_and_counted(client, admin, consumer):
    """The literal check cannot see what a name resolves to: the worker checks the address
    it would connect to, refuses, records why (/metrics) and makes no further attempt."""
    deploy_source(client, admin, "double", "def handler(e, c):\n    return 2\n")
    url = f"http://{socket.gethostname()}:9/cb"  # this machine's name: a local address
    invoked = client.post(
        "/api/v1/functions/double/invoke", headers={**admin, "X-Callback-Url": url}
    )
    assert invoked.status_code == 202, invoked.get_json()
    assert wait_for_run(invoked.get_json()["run_id"]).state == "success"
    refused = "brisa_callbacks_refused_total 1"
    poll(
        lambda: refused in client.get("/metrics", headers=admin).get_data(as_text=True),
        what="the refused callback counted",
    )


def test_redirects_are_never_followed(client, admin, consumer, receiver, monkeypatch):
    """#16.1: a 302 to Brisa's own API arrived as a GET; a 302 to ftp:// was followed."""
    monkeypatch.setenv("BRISA_CALLBACK_ATTEMPTS", "2")
    config.current.cache_clear()
    Redirector.posts, Redirector.target = 0, receiver
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deploy_source(client, admin, "double", "def handler(e, c):\n    return 3\n")
        url = f"http://127.0.0.1:{server.server_address[1]}/moved"
        invoked = client.post(
            "/api/v1/functions/double/invoke", headers={**admin, "X-Callback-Url": url}
        )
        assert invoked.status_code == 202
        poll(lambda: Redirector.posts == 2, what="both attempts at the redirecting receiver")
        assert wait_for_run(invoked.get_json()["run_id"]).state == "success"
    finally:
        server.shutdown()
    assert Receiver.received == []  # the redirect's target never got a request


def callback_state(run_id: int) -> tuple:
    with db.connection_context():
        run = DagRun.get_by_id(run_id)
    return run.callback_state, run.callback_attempt


def test_a_callback_whose_message_was_lost_is_resent_by_the_clock(
    client, admin, consumer, receiver, monkeypatch
):
    """#15.16: a callback lived only in its queue message; one lost with Redis was never
    sent (109 of 2,002 in a soak). The delivery is kept on the run; the tick resends it."""
    Receiver.failures = 0
    monkeypatch.setattr(broker.HueyTransport, "send_callback", lambda *args: None)  # lost
    deploy_source(client, admin, "double", "def handler(e, c):\n    return e['conf'] * 2\n")
    headers = {**admin, "X-Callback-Url": receiver}
    invoked = client.post("/api/v1/functions/double/invoke", json=4, headers=headers)
    run_id = invoked.get_json()["run_id"]
    assert wait_for_run(run_id).state == "success"
    assert callback_state(run_id) == ("pending", 1)
    monkeypatch.undo()
    with db.connection_context():
        assert clock.tick(utcnow(), 60)["callbacks_resent"] == 0  # not overdue yet
        assert clock.tick(utcnow() + timedelta(seconds=31), 60)["callbacks_resent"] == 1
    poll(lambda: callback_state(run_id) == ("delivered", 1), what="the resent callback")
    assert [json.loads(body)["result"] for _, body in Receiver.received] == [8]


class Hanging(BaseHTTPRequestHandler):
    """Holds every POST until ``release`` is set, counting those it holds."""

    release = threading.Event()
    held = 0
    lock = threading.Lock()

    def do_POST(self):
        with Hanging.lock:
            Hanging.held += 1
        Hanging.release.wait(60)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_slow_receivers_never_hold_the_task_threads(
    client, admin, consumer, loopback_allowed, monkeypatch
):
    """#16.2: callbacks shared the worker's task threads, each attempt blocking up to 10 s:
    four hanging receivers stalled every invoke. Now they wait on callback threads of their
    own: with more callbacks hanging than the worker has task threads, a try still runs."""
    monkeypatch.setenv("BRISA_CALLBACK_TIMEOUT_S", "60")
    config.current.cache_clear()
    Hanging.release, Hanging.held = threading.Event(), 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deploy_source(client, admin, "double", "def handler(e, c):\n    return e['conf'] * 2\n")
        headers = {**admin, "X-Callback-Url": f"http://127.0.0.1:{server.server_address[1]}/"}
        for n in range(4):
            client.post("/api/v1/functions/double/invoke", json=n, headers=headers)
        poll(lambda: Hanging.held >= 2, what="callbacks hanging on every task thread")
        waited = client.post("/api/v1/functions/double/invoke?wait=30", json=21, headers=admin)
        assert (waited.status_code, waited.get_json()["result"]) == (200, 42)
        assert not Hanging.release.is_set() and Hanging.held >= 2  # still hanging meanwhile
    finally:
        Hanging.release.set()
        server.shutdown()


def test_a_callback_never_scheduled_is_scheduled_by_the_clock(
    client, admin, consumer, receiver, monkeypatch
):
    """The soak lost one callback: Postgres crashed 36 ms after the run's end committed,
    before its callback was scheduled. The tick schedules what a finished run still owes."""
    from app.engine import callbacks

    Receiver.failures = 0
    monkeypatch.setattr(callbacks, "schedule", lambda run_id: None)  # the crash, in effect
    deploy_source(client, admin, "double", "def handler(e, c):\n    return e['conf'] * 2\n")
    headers = {**admin, "X-Callback-Url": receiver}
    invoked = client.post("/api/v1/functions/double/invoke", json=5, headers=headers)
    run_id = invoked.get_json()["run_id"]
    assert wait_for_run(run_id).state == "success"
    assert callback_state(run_id) == (None, 0)
    monkeypatch.undo()
    with db.connection_context():
        clock.tick(utcnow() + timedelta(seconds=31), 60)
    poll(lambda: callback_state(run_id) == ("delivered", 1), what="the scheduled callback")
    assert [json.loads(body)["result"] for _, body in Receiver.received] == [10]
