"""The soak's traffic: chains, fan-outs, retries, signed webhooks, invokes that wait for their
result and invokes that are called back, mixed, sent over HTTP as senders would send them
while processes die: a request that fails (refused, cut, a 503) is sent again until it is
answered, and a webhook again with the same delivery id, as GitHub redelivers.

Every run carries ``{"soak": n}`` in its conf (a webhook's or an invoke's body), ``n`` being
its submission, so the ledger (tests/soak/ledger.py) maps the database's runs back to what was
sent. The one function every task runs appends ``run task try`` to a ledger file when it
starts: the file counts executions, so a try that ran twice shows twice.
"""

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from app.domain.states import RUN_FINISHED
from app.store import db
from app.store.models import DagRun
from tests.bench.workloads import per_thread_session
from tests.system import AUTH, github_headers

FUNCTION = "soak_ledgered"
LEDGERED = (
    "import os\n"
    "def handler(event, context):\n"
    "    with open(os.environ['SOAK_LEDGER'], 'a') as ledger:\n"
    "        ledger.write(f'{context.run_id} {context.task_id} {context.try_number}\\n')\n"
    "    if context.try_number <= (event.get('args') or {}).get('fail_tries', 0):\n"
    "        raise RuntimeError(f'try {context.try_number} fails on purpose')\n"
    "    return context.try_number\n"
)
DEFAULT_ARGS = {"retries": 8, "retry_delay": 0.2}  # tries a dying worker takes count too
FANOUT_WIDTH = 4


def _task(task_id: str, upstream: list[str], **args) -> dict:
    return {"task_id": task_id, "function": FUNCTION, "upstream": upstream, "args": args}


def _dag(dag_id: str, tasks: list[dict]) -> dict:
    return {
        "dag_id": dag_id,
        "max_active_runs": 100_000,
        "max_active_tasks": 100_000,
        "default_args": DEFAULT_ARGS,
        "tasks": tasks,
    }


MIDDLE = [f"m{i}" for i in range(FANOUT_WIDTH)]
DAGS = {
    "chain": _dag("soak_chain", [_task("t0", []), _task("t1", ["t0"]), _task("t2", ["t1"])]),
    "fanout": _dag(
        "soak_fanout",
        [_task("root", []), *(_task(m, ["root"]) for m in MIDDLE), _task("join", MIDDLE)],
    ),
    "retry": _dag("soak_retry", [_task("t", [], fail_tries=1)]),
    "webhook": _dag("soak_hooked", [_task("t0", []), _task("t1", ["t0"])]),
}
# Submission n is of kind KINDS[n % 10]: in every ten, 2 chains, 1 fan-out, 2 retries, 2
# webhooks, 2 invokes called back and 1 invoke waiting for its result.
KINDS = ("chain", "retry", "webhook", "callback", "fanout")
KINDS += ("chain", "retry", "webhook", "callback", "invoke")
REDELIVER_EVERY = 5  # the webhooks of every 5th ten are delivered again once accepted
INVOKE_WAIT_S = 10
REQUEST_TIMEOUT_S = 30
FINISHED = [str(state) for state in RUN_FINISHED]


@dataclass
class Submission:
    """One request of the load, as its sender saw it: ``run_id`` the run its answer named
    (None: never answered before the deadline); ``repeat_run_id`` the run named by a webhook's
    second delivery; ``sent`` how many times it was sent, ``cut`` how many of those got no
    answer (the run may exist all the same)."""

    n: int
    kind: str
    run_id: int | None = None
    repeat_run_id: int | None = None
    sent: int = 0
    cut: int = 0


def deploy(base: str, ledger_path: str) -> str:
    """The function and the DAGs; returns the webhook DAG's secret."""
    client = requests.Session()
    client.headers.update(AUTH)
    body = {"name": FUNCTION, "source": LEDGERED, "env": {"SOAK_LEDGER": ledger_path}}
    answer = client.post(f"{base}/api/v1/functions", json=body, timeout=60)
    assert answer.status_code == 201, answer.text
    secret = ""
    for kind, spec in DAGS.items():
        answer = client.post(f"{base}/api/v1/dags", json=spec, timeout=60)
        assert answer.status_code == 201, answer.text
        if kind == "webhook":
            secret = answer.json()["webhook_secret"]
    return secret


class Receiver:
    """A callback receiver on 127.0.0.1: records every delivery as (unix time, webhook-id,
    the body's run_id and state) and answers 204."""

    def __init__(self):
        self.deliveries: list[tuple[float, str, int, str]] = []
        record = self.deliveries.append

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                record((time.time(), self.headers["webhook-id"], body["run_id"], body["state"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Backlog:
    """Runs not finished yet, counted in the database at most every ``every_s`` seconds;
    ``wait_below(limit)`` holds a sender while there are ``limit`` or more, so the load
    stays a steady stream instead of one queue of every run."""

    def __init__(self, every_s: float = 0.5):
        self.every_s, self.count, self.counted_at = every_s, 0, 0.0
        self.lock = threading.Lock()

    def _recount(self) -> None:
        def count() -> int:
            with db.db.connection_context():
                return DagRun.select().where(DagRun.state.not_in(FINISHED)).count()

        try:
            self.count = count()
        except db.DB_ERRORS:
            db.discard_connection()  # Postgres is down: the last count holds
        self.counted_at = time.monotonic()

    def wait_below(self, limit: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            with self.lock:
                if time.monotonic() - self.counted_at >= self.every_s:
                    self._recount()
                if self.count < limit:
                    self.count += 1  # this sender's run, until the next count
                    return
            time.sleep(self.every_s / 2)


class Sender:
    """Sends submissions to a running system until each is answered or ``deadline``
    (monotonic) passes."""

    def __init__(self, base: str, callback_url: str, secret: str, deadline: float):
        self.base, self.callback_url, self.secret = base, callback_url, secret
        self.deadline = deadline
        self.session = per_thread_session()

    def send(self, submission: Submission) -> Submission:
        submission.run_id = self._until_answered(submission)
        redelivered = submission.n // len(KINDS) % REDELIVER_EVERY == 0
        if submission.kind == "webhook" and submission.run_id is not None and redelivered:
            submission.repeat_run_id = self._until_answered(submission)
        return submission

    def _until_answered(self, submission: Submission) -> int | None:
        """The run_id of the first answer, resending while the system cannot answer."""
        while time.monotonic() < self.deadline:
            submission.sent += 1
            try:
                answer = self._request(submission)
            except requests.RequestException:
                submission.cut += 1
            else:
                if answer.status_code in (200, 201, 202):
                    return answer.json()["run_id"]
                assert answer.status_code >= 500, f"{submission}: {answer.text}"
            time.sleep(random.uniform(0.1, 0.5))
        return None

    def _request(self, submission: Submission) -> requests.Response:
        client, n = self.session(), submission.n
        if submission.kind == "webhook":
            body = json.dumps({"soak": n}).encode()
            headers = github_headers(self.secret, body, f"soak-{n}")
            url = f"{self.base}/hooks/{DAGS['webhook']['dag_id']}"
            return client.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_S)
        if submission.kind in DAGS:
            url = f"{self.base}/api/v1/dags/{DAGS[submission.kind]['dag_id']}/runs"
            return client.post(url, json={"conf": {"soak": n}}, timeout=REQUEST_TIMEOUT_S)
        url = f"{self.base}/api/v1/functions/{FUNCTION}/invoke"
        params = (
            {"callback_url": self.callback_url}
            if submission.kind == "callback"
            else {"wait": INVOKE_WAIT_S}
        )
        return client.post(url, params=params, json={"soak": n}, timeout=REQUEST_TIMEOUT_S)


def drive(sender: Sender, runs: int, senders: int, backlog_limit: int) -> list[Submission]:
    """Submissions 0 .. runs-1 from ``senders`` threads, at most ``backlog_limit`` runs
    unfinished at once; those not sent before the sender's deadline are left unsent
    (``sent == 0``)."""
    backlog = Backlog()

    def one(n: int) -> Submission:
        submission = Submission(n, KINDS[n % len(KINDS)])
        backlog.wait_below(backlog_limit, sender.deadline)
        return sender.send(submission) if time.monotonic() < sender.deadline else submission

    with ThreadPoolExecutor(max_workers=senders) as pool:
        return list(pool.map(one, range(runs)))
