"""Kill, stop and flush real processes mid-run; every run completes, no try runs twice.

The function under test appends "run task try" to a ledger file at its start, so the ledger
counts executions: a try that ran twice shows twice."""

import collections
import hashlib
import hmac
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from app.cli import devserver
from tests.soak.servers import PrivatePostgres, PrivateRedis
from tests.system import AUTH, E2E_REDIS_URL, ROOT, procfile_system

pytestmark = [pytest.mark.fault, pytest.mark.timeout(300)]

FAST = {
    "BRISA_HEARTBEAT": "0.5",
    "BRISA_HEARTBEAT_TIMEOUT": "3",
    "BRISA_QUEUED_TIMEOUT": "3",
    "BRISA_TICK_SECONDS": "1",
    "BRISA_SHUTDOWN_TIMEOUT": "2",
    "BRISA_WORKER_THREADS": "4",
}
LEDGERED = (
    "import time\n"
    "def handler(event, context):\n"
    "    with open(event['args']['ledger'], 'a') as ledger:\n"
    "        ledger.write(f'{context.run_id} {context.task_id} {context.try_number}\\n')\n"
    "    time.sleep(event['args'].get('sleep', 0))\n"
    "    return context.try_number\n"
)


@pytest.fixture
def servers(request):
    """For a test marked ``own_servers`` (it stops them): a Postgres cluster and a Redis of
    its own, (postgres, redis), so the machine's shared servers, which other test runs use,
    are never stopped. None for the others."""
    if request.node.get_closest_marker("own_servers") is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="brisa-faults-", dir="/tmp"))  # postgres reads it
    postgres, queue = PrivatePostgres(folder), PrivateRedis(folder)
    postgres.url = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    try:
        postgres.init()
        postgres.start()
        queue.start()
        yield postgres, queue
    finally:
        queue.crash()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def system(tmp_path, servers):
    extra = dict(FAST)
    if servers is not None:
        extra.update(DATABASE_URL=servers[0].url, REDIS_URL=servers[1].url)
    with procfile_system("postgres", tmp_path / "var", extra_env=extra) as running:
        yield running


class Client:
    def __init__(self, base: str, ledger: Path):
        self.base, self.ledger = base, ledger

    def call(self, method: str, path: str, **kwargs):
        return requests.request(method, f"{self.base}{path}", headers=AUTH, timeout=30, **kwargs)

    def setup(self, dag_id: str, tasks: int, sleep: float = 0, retries: int = 0, chain=False):
        source = {"name": "ledgered", "source": LEDGERED}
        assert self.call("POST", "/api/v1/functions", json=source).status_code in (200, 201)
        args = {"ledger": str(self.ledger), "sleep": sleep}
        spec = {
            "dag_id": dag_id,
            "max_active_runs": 1000,
            "max_active_tasks": 1000,
            "default_args": {"retries": retries, "retry_delay": 0.5},
            "tasks": [
                {
                    "task_id": f"t{i}",
                    "function": "ledgered",
                    "args": args,
                    "upstream": [f"t{i - 1}"] if chain and i else [],
                }
                for i in range(tasks)
            ],
        }
        assert self.call("POST", "/api/v1/dags", json=spec).status_code == 201

    def trigger(self, dag_id: str) -> int:
        return self.call("POST", f"/api/v1/dags/{dag_id}/runs").json()["run_id"]

    def run(self, run_id: int) -> dict:
        return self.call("GET", f"/api/v1/runs/{run_id}").json()

    def wait_all(self, run_ids, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        pending = set(run_ids)
        finished = {}
        while pending and time.monotonic() < deadline:
            for run_id in list(pending):
                try:
                    run = self.run(run_id)
                except (requests.RequestException, ValueError):
                    continue
                if run.get("state") in ("success", "failed", "cancelled"):
                    finished[run_id] = run
                    pending.discard(run_id)
            time.sleep(0.2)
        assert not pending, f"{len(pending)} runs never finished: {sorted(pending)[:10]}"
        return [finished[r] for r in run_ids]

    def executions(self) -> collections.Counter:
        if not self.ledger.exists():
            return collections.Counter()
        return collections.Counter(
            tuple(line.split()) for line in self.ledger.read_text().splitlines()
        )


@pytest.fixture
def client(system, tmp_path):
    return Client(system.base, tmp_path / "ledger.txt")


def worker_pid_running(client: Client, run_id: int) -> int:
    """The pid of the worker process running the run's first task, once it runs."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = client.run(run_id)["tasks"][0]
        if task["state"] == "running" and task["worker"]:
            return int(task["worker"].rsplit(":", 1)[1])
        time.sleep(0.1)
    raise AssertionError("the task never started")


def wait_mid_run(client: Client, run_id: int) -> None:
    """Return once the run has tries started and tasks not yet started."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {task["state"] for task in client.run(run_id)["tasks"]}
        if states & {"running", "success"} and states & {"none", "queued"}:
            return
        time.sleep(0.05)
    raise AssertionError("the run was never seen mid-run")


def check(runs, client: Client, expect_tasks: int):
    """Every run succeeded; no (run, task, try) executed twice. Returns (lost, duplicated)."""
    lost = sum(run["state"] != "success" for run in runs)
    duplicated = sum(count - 1 for count in client.executions().values() if count > 1)
    for run in runs:
        assert len(run["tasks"]) == expect_tasks
    return lost, duplicated


def test_sigkill_a_worker_mid_task_retries_it_on_another(system, client, report):
    client.setup("long", tasks=1, sleep=3, retries=2)
    system.start("worker")
    run_id = client.trigger("long")
    victim = worker_pid_running(client, run_id)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    (run,) = client.wait_all([run_id])
    recover = time.monotonic() - killed_at
    lost, duplicated = check([run], client, 1)
    report(
        fault="SIGKILL a worker mid-task",
        runs=1,
        lost=lost,
        duplicated=duplicated,
        recover_s=recover,
    )
    assert (lost, duplicated) == (0, 0)
    task = run["tasks"][0]
    assert task["state"] == "success" and task["try_number"] >= 2
    assert task["worker"].rsplit(":", 1)[1] != str(victim)


def test_sigterm_a_worker_mid_task_hands_it_back_without_spending_a_retry(system, client, report):
    client.setup("long", tasks=1, sleep=6, retries=0)
    run_id = client.trigger("long")
    victim_pid = worker_pid_running(client, run_id)
    victim = next(p for p in system.processes if p.pid == victim_pid)
    system.start("worker")
    stopped_at = time.monotonic()
    victim.send_signal(signal.SIGTERM)  # graceful: 2 s to finish, then handed back
    assert victim.wait(20) == 0
    (run,) = client.wait_all([run_id], timeout=60)
    recover = time.monotonic() - stopped_at
    lost, duplicated = check([run], client, 1)
    report(
        fault="SIGTERM a worker mid-task",
        runs=1,
        lost=lost,
        duplicated=duplicated,
        recover_s=recover,
    )
    assert (lost, duplicated) == (0, 0)
    detail = client.call("GET", f"/api/v1/runs/{run_id}/tasks/t0").json()
    assert [t["state"] for t in detail["tries"]] == ["handed_back", "success"]
    assert (detail["try_number"], detail["max_tries"]) == (2, 2)  # no retry spent


def test_sigterm_lets_a_short_task_finish(system, client, report):
    client.setup("short", tasks=1, sleep=0.8)
    run_id = client.trigger("short")
    victim_pid = worker_pid_running(client, run_id)
    victim = next(p for p in system.processes if p.pid == victim_pid)
    stopped_at = time.monotonic()
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(20) == 0
    (run,) = client.wait_all([run_id])
    recover = time.monotonic() - stopped_at
    lost, duplicated = check([run], client, 1)
    report(
        fault="SIGTERM a worker: a short task finishes",
        runs=1,
        lost=lost,
        duplicated=duplicated,
        recover_s=recover,
    )
    assert (lost, duplicated) == (0, 0)
    detail = client.call("GET", f"/api/v1/runs/{run_id}/tasks/t0").json()
    assert (detail["state"], detail["try_number"]) == ("success", 1)
    assert [t["state"] for t in detail["tries"]] == ["success"]  # not handed back


def test_redis_flushed_with_tasks_queued_every_run_completes(system, client, report):
    client.setup("chain", tasks=3, chain=True)
    worker = next(p for p in system.processes if "app.worker.consumer.huey" in " ".join(p.args))
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    run_ids = [client.trigger("chain") for _ in range(20)]
    flushed_at = time.monotonic()
    redis.Redis.from_url(E2E_REDIS_URL).flushdb()  # FLUSHALL, for this test's database only
    system.start("worker")
    runs = client.wait_all(run_ids)
    recover = time.monotonic() - flushed_at
    lost, duplicated = check(runs, client, 3)
    report(
        fault="Redis flushed with 20 runs queued",
        runs=20,
        lost=lost,
        duplicated=duplicated,
        recover_s=recover,
    )
    assert (lost, duplicated) == (0, 0)


def test_duplicated_messages_and_racing_workers_run_each_try_once(system, client, report):
    client.setup("dup", tasks=10, sleep=0.2)
    system.start("worker")
    run_ids = [client.trigger("dup") for _ in range(5)]
    # every message delivered three more times, to two worker processes racing for them
    storage = redis.Redis.from_url(E2E_REDIS_URL)
    duplicated_at = time.monotonic()
    for key in storage.keys("huey.redis.brisa*"):
        if storage.type(key) == b"list":
            for message in storage.lrange(key, 0, -1):
                storage.lpush(key, message, message, message)
    runs = client.wait_all(run_ids)
    recover = time.monotonic() - duplicated_at
    lost, duplicated = check(runs, client, 10)
    report(
        fault="every message x4, two workers racing",
        runs=5,
        lost=lost,
        duplicated=duplicated,
        recover_s=recover,
    )
    assert (lost, duplicated) == (0, 0)
    assert sum(client.executions().values()) == 50


def test_a_thousand_runs_while_a_worker_is_killed_and_restarted(system, client, report):
    client.setup("many", tasks=1, retries=5)
    procfile_worker = devserver.read_procfile(ROOT / "Procfile")["worker"]
    stop = threading.Event()

    def chaos():
        victim = system.start("worker")
        while not stop.wait(3):
            victim.kill()
            victim.wait()
            victim = devserver.start(procfile_worker, system.env)
            system.processes.append(victim)

    killer = threading.Thread(target=chaos, daemon=True)
    started = time.monotonic()
    killer.start()
    run_ids = [client.trigger("many") for _ in range(1000)]
    try:
        runs = client.wait_all(run_ids, timeout=240)
    finally:
        stop.set()
        killer.join()
    lost, duplicated = check(runs, client, 1)
    report(
        fault="1000 runs, a worker SIGKILLed every 3 s",
        runs=1000,
        lost=lost,
        duplicated=duplicated,
        recover_s=time.monotonic() - started,
    )
    assert (lost, duplicated) == (0, 0)
    executions = client.executions()
    for run in runs:
        task = run["tasks"][0]
        ran = sum(n for (r, _t, _try), n in executions.items() if int(r) == run["run_id"])
        assert 1 <= ran <= task["try_number"]


@pytest.mark.own_servers
def test_postgres_stopped_mid_run_answers_503_then_everything_completes(
    system, servers, client, report
):
    postgres, _queue = servers
    client.setup("fifty", tasks=50, sleep=0.2)
    run_id = client.trigger("fifty")
    wait_mid_run(client, run_id)
    postgres.stop()
    stopped_at = time.monotonic()
    statuses = []
    try:
        while time.monotonic() - stopped_at < 10:
            try:
                statuses.append(client.call("GET", f"/api/v1/runs/{run_id}").status_code)
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)
            time.sleep(0.5)
    finally:
        postgres.start()
    (run,) = client.wait_all([run_id], timeout=180)
    recover = time.monotonic() - stopped_at
    lost, duplicated = check([run], client, 50)
    report(
        fault="Postgres stopped for 10 s mid-run",
        runs=1,
        lost=lost,
        duplicated=duplicated,
        recover_s=recover,
    )
    assert 503 in statuses and set(statuses) <= {503, 200}, statuses
    assert (lost, duplicated) == (0, 0)
    assert all(t["state"] == "success" for t in run["tasks"])


@pytest.mark.own_servers
def test_redis_down_triggers_and_webhooks_are_accepted_and_run_once_it_is_back(
    system, servers, client, report
):
    _postgres, queue = servers
    client.setup("while_down", tasks=2, chain=True)
    secret = client.call("POST", "/api/v1/dags/while_down/webhook-secret").json()["webhook_secret"]
    queue.crash()
    try:
        run_ids = [client.trigger("while_down") for _ in range(5)]
        body = b'{"from": "a webhook"}'
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        hook = requests.post(
            f"{system.base}/hooks/while_down",
            data=body,
            headers={"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "during-outage"},
            timeout=30,
        )
        assert hook.status_code == 202, hook.text
        run_ids.append(hook.json()["run_id"])
        ready = client.call("GET", "/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["queue"].startswith("down")
    finally:
        queue.start()
    back_at = time.monotonic()
    runs = client.wait_all(run_ids, timeout=120)
    lost, duplicated = check(runs, client, 2)
    report(
        fault="Redis down: 5 triggers and a webhook",
        runs=6,
        lost=lost,
        duplicated=duplicated,
        recover_s=time.monotonic() - back_at,
    )
    assert (lost, duplicated) == (0, 0)
