"""Brisa's benchmarks, each against a running Procfile system (tests/system.py).

They drive it over HTTP as a user would, and read task timings straight from its database
(microseconds, where the API shows milliseconds) or from the functions' own results: this
process is bound to the system's database and queues (``bound_to``). The tick is timed in
this process, as the clock runs it.
"""

import collections
import contextlib
import hashlib
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import pairwise

import peewee
import psycopg2
import requests

from app import broker
from app.clock import periodic as clock
from app.config import load_settings
from app.domain.dagspec import parse_dag_spec
from app.domain.timeutil import utcnow
from app.store import db
from app.store.models import Dag, DagRun, DagVersion, TaskInstance
from app.store.transitions import RUN_FINISHED
from tests.bench.measure import latency_summary, percentile
from tests.conftest import wait_for_run
from tests.system import AUTH, github_headers

NOOP = "def handler(event, context):\n    return None\n"
# Each chain task notes the time at its first line and just before it returns: the bench
# measures a hand-off from one function's return to the next one's first line.
CHAIN_STEP = """
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def handler(event, context):
    first_line = time.time()
    total = fib(10) + sum(result["total"] for result in event["upstream"].values())
    return {"total": total, "first_line": first_line, "returned": time.time()}
"""
FUNCTIONS = {"noop": NOOP, "chain_step": CHAIN_STEP}
RUN_TIMEOUT_S = 600
QUIET_POLL_S = 0.05


@contextlib.contextmanager
def bound_to(system):
    """This process bound to the system's database and queues; yields its settings."""
    settings = load_settings(system.env)
    database = db.bind(settings.database_url)
    broker.rebind(broker.huey, settings)
    broker.rebind(clock.huey, settings)
    try:
        yield settings
    finally:
        if hasattr(database, "close_all"):  # Postgres: the pool's connections
            database.close_all()
        else:
            database.close()


def session() -> requests.Session:
    client = requests.Session()
    client.headers.update(AUTH)
    return client


def deploy_functions(base: str) -> None:
    with session() as client:
        for name, source in FUNCTIONS.items():
            answer = client.post(f"{base}/api/v1/functions", json={"name": name, "source": source})
            assert answer.status_code in (200, 201), answer.text


def put_dag(base: str, spec: dict) -> dict:
    answer = requests.put(
        f"{base}/api/v1/dags/{spec['dag_id']}", json=spec, headers=AUTH, timeout=60
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def trigger(base: str, dag_id: str) -> tuple[int, datetime]:
    """A manual run of ``dag_id``: its id, and the time just before it was asked for."""
    triggered = utcnow()
    answer = requests.post(f"{base}/api/v1/dags/{dag_id}/runs", json={}, headers=AUTH, timeout=60)
    assert answer.status_code == 201, answer.text
    return answer.json()["run_id"], triggered


def succeeded(run_id: int, triggered: datetime) -> tuple[DagRun, float]:
    """The finished run, and seconds from its trigger to its success (as the database
    recorded it: polling does not blur it)."""
    with db.db.connection_context():
        run = DagRun.get_by_id(run_id)
    assert run.state == "success", f"{run.dag_id} run {run.id}: {run.state}"
    return run, (run.finished_at - triggered).total_seconds()


def run_to_success(base: str, dag_id: str) -> tuple[DagRun, float]:
    """Trigger a run and wait for it: the run, and seconds from the trigger to its success."""
    run_id, triggered = trigger(base, dag_id)
    wait_for_run(run_id, timeout=RUN_TIMEOUT_S)
    return succeeded(run_id, triggered)


def task_instances(run: DagRun) -> dict[str, TaskInstance]:
    with db.db.connection_context():
        return {ti.task_id: ti for ti in TaskInstance.select().where(TaskInstance.run == run.id)}


def finished_tasks() -> int:
    with db.db.connection_context():
        return TaskInstance.select().where(TaskInstance.finished_at.is_null(False)).count()


# chain40 --------------------------------------------------------------------------------


def chain_spec(length: int) -> dict:
    tasks = [
        {
            "task_id": f"t{i:02d}",
            "function": "chain_step",
            "upstream": [f"t{i - 1:02d}"] if i else [],
        }
        for i in range(length)
    ]
    return {"dag_id": f"chain{length}", "tasks": tasks}


def handoffs_s(tasks: dict[str, TaskInstance]) -> list[float]:
    """From each function's return to its successor's first line (their own clocks)."""
    ordered = [tasks[task_id].result for task_id in sorted(tasks)]
    return [b["first_line"] - a["returned"] for a, b in pairwise(ordered)]


def in_function_s(tasks: dict[str, TaskInstance]) -> list[float]:
    return [ti.result["returned"] - ti.result["first_line"] for ti in tasks.values()]


def chain(base: str, length: int, runs: int) -> dict:
    """A chain of ``length`` tasks, each computing fib(10) and adding its upstream's sum:
    trigger to success (the median of ``runs``), and every hand-off of every run (one
    function's return to the next one's first line: the finishing try's commits, the queue,
    the next try's claim and its process; the function's own work is not in it)."""
    spec = chain_spec(length)
    put_dag(base, spec)
    walls, gaps, inside = [], [], []
    for _ in range(runs):
        run, wall = run_to_success(base, spec["dag_id"])
        tasks = task_instances(run)
        walls.append(wall)
        gaps += handoffs_s(tasks)
        inside += in_function_s(tasks)
    return {
        "tasks": length,
        "runs": runs,
        "wall_s": round(statistics.median(walls), 4),
        "wall_best_s": round(min(walls), 4),
        "handoff_p50_ms": round(statistics.median(gaps) * 1000, 2),
        "handoff_p95_ms": round(percentile(gaps, 95) * 1000, 2),
        "in_function_p50_ms": round(statistics.median(inside) * 1000, 2),
        "result": tasks[max(tasks)].result["total"],
    }


# fanout1000 -----------------------------------------------------------------------------


def fanout_spec(width: int) -> dict:
    middle = [f"n{i:04d}" for i in range(width)]
    tasks = [
        {"task_id": "root", "function": "noop"},
        *({"task_id": t, "function": "noop", "upstream": ["root"]} for t in middle),
        {"task_id": "join", "function": "noop", "upstream": middle},
    ]
    return {"dag_id": f"fanout{width}", "tasks": tasks}


def fanout_rate(base: str, width: int) -> float:
    """One run of the fan-out DAG (``put_dag(base, fanout_spec(width))`` first): its tasks
    per second, trigger to success."""
    _, wall = run_to_success(base, f"fanout{width}")
    return (width + 2) / wall


def fanout_summary(width: int, rates: list[float]) -> dict:
    return {
        "tasks": width + 2,
        "runs": len(rates),
        "tasks_per_s": round(statistics.median(rates), 1),
        "tasks_per_s_best": round(max(rates), 1),
    }


def fanouts_quietly(base: str, width: int, runs: int, database_url: str) -> tuple[list, int]:
    """``runs`` runs of the fan-out DAG one after the other, each waited for on one plain
    connection (each poll one statement and one commit of the bench's own, nothing else):
    the (run id, trigger time) of each, for ``fanout_rates``, and the polls made."""
    started, polls = [], 0
    with contextlib.closing(psycopg2.connect(database_url)) as connection:
        connection.autocommit = True
        for _ in range(runs):
            started.append(trigger(base, f"fanout{width}"))
            polls += wait_quietly(connection, started[-1][0])
    return started, polls


def wait_quietly(connection, run_id: int) -> int:
    """Poll the run's state until it ended: the polls made."""
    deadline, polls = time.monotonic() + RUN_TIMEOUT_S, 0
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT state FROM dag_run WHERE id = %s", (run_id,))
            polls += 1
            if cursor.fetchone()[0] in RUN_FINISHED:
                return polls
            time.sleep(QUIET_POLL_S)
    raise AssertionError(f"run {run_id} did not finish in {RUN_TIMEOUT_S} s")


def fanout_rates(width: int, started: list) -> list[float]:
    """The tasks per second of each fan-out run of ``fanouts_quietly``."""
    return [(width + 2) / succeeded(*run)[1] for run in started]


def run_tasks(base: str, at_least: int, width: int, deadline: float) -> list[float]:
    """Fan-outs of ``width`` until ``at_least`` more tasks have finished, or until the next
    one would likely end past the monotonic ``deadline``: the rate of each."""
    rates, until, last_took = [], finished_tasks() + at_least, 0.0
    while finished_tasks() < until and time.monotonic() + last_took < deadline:
        rates.append(fanout_rate(base, width))
        last_took = (width + 2) / rates[-1]
    return rates


# invoke ---------------------------------------------------------------------------------


def invoke_once(client: requests.Session, base: str, wait_s: int = 5) -> float:
    started = time.perf_counter()
    url = f"{base}/api/v1/functions/noop/invoke?wait={wait_s}"
    answer = client.post(url, json={}, timeout=wait_s + 25)
    took = time.perf_counter() - started
    assert answer.status_code == 200 and answer.json()["state"] == "success", answer.text
    return took


def until_served(base: str) -> None:
    """One invoke, waited for patiently: a worker just started is up and warm after it."""
    with session() as client:
        invoke_once(client, base, wait_s=60)


def invoke_sequential(base: str, calls: int) -> dict:
    with session() as client:
        started = time.perf_counter()
        latencies = [invoke_once(client, base) for _ in range(calls)]
        return latency_summary(latencies, time.perf_counter() - started)


def per_thread_session():
    """A requests.Session for each client thread, made on its first call."""
    local = threading.local()

    def current() -> requests.Session:
        if not hasattr(local, "client"):
            local.client = session()
        return local.client

    return current


def invoke_concurrent(base: str, calls: int, clients: int) -> dict:
    client = per_thread_session()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        started = time.perf_counter()
        latencies = list(pool.map(lambda _: invoke_once(client(), base), range(calls)))
        wall = time.perf_counter() - started
    return {"clients": clients, **latency_summary(latencies, wall)}


def invoke(base: str, sequential: int, concurrent: int, clients: int) -> dict:
    """``POST /functions/noop/invoke?wait=5``: one client, then ``clients`` at once."""
    return {
        "sequential": invoke_sequential(base, sequential),
        "concurrent": invoke_concurrent(base, concurrent, clients),
    }


# webhooks -------------------------------------------------------------------------------


def create_hooked_dag(base: str) -> str:
    spec = {"dag_id": "hooked", "tasks": [{"task_id": "t", "function": "noop"}]}
    answer = requests.post(f"{base}/api/v1/dags", json=spec, headers=AUTH, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()["webhook_secret"]


def deliver_all(url: str, secret: str, deliveries: int, clients: int) -> tuple[list, float]:
    """Signed deliveries (GitHub's scheme), each with its own id; (id, status) and the wall."""
    client = per_thread_session()

    def deliver(n: int) -> tuple[str, int]:
        delivery, body = f"bench-{n}", json.dumps({"n": n}).encode()
        answer = client().post(url, data=body, headers=github_headers(secret, body, delivery))
        return delivery, answer.status_code

    with ThreadPoolExecutor(max_workers=clients) as pool:
        started = time.perf_counter()
        answers = list(pool.map(deliver, range(deliveries)))
        return answers, time.perf_counter() - started


def webhook_runs(dag_id: str) -> list[tuple[str, str]]:
    """The DAG's webhook runs: (delivery id, state) of each."""
    with db.db.connection_context():
        dag = Dag.get(Dag.dag_id == dag_id)
        rows = DagRun.select(DagRun.idempotency_key, DagRun.state).where(
            (DagRun.dag == dag) & (DagRun.run_type == "webhook")
        )
        prefix = f"webhook:{dag.id}:"
        return [(row.idempotency_key.removeprefix(prefix), row.state) for row in rows]


def wait_until_all_finished(dag_id: str) -> list[tuple[str, str]]:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    runs = webhook_runs(dag_id)
    while not {state for _, state in runs} <= RUN_FINISHED:
        assert time.monotonic() < deadline, "webhook runs did not finish"
        time.sleep(0.2)
        runs = webhook_runs(dag_id)
    return runs


def webhooks(base: str, deliveries: int, clients: int) -> dict:
    """Signed deliveries to /hooks/{dag_id} from ``clients`` at once: accepted per second;
    then every accepted delivery must have exactly one run, and every run must succeed."""
    secret = create_hooked_dag(base)
    answers, wall = deliver_all(f"{base}/hooks/hooked", secret, deliveries, clients)
    accepted = {delivery for delivery, status in answers if status == 202}
    runs = wait_until_all_finished("hooked")
    per_delivery = collections.Counter(delivery for delivery, _ in runs)
    return {
        "deliveries": deliveries,
        "clients": clients,
        "accepted": len(accepted),
        "accepted_per_s": round(len(accepted) / wall, 1),
        "runs": len(runs),
        "lost": len(accepted - set(per_delivery)),
        "duplicated": sum(count - 1 for count in per_delivery.values()),
        "unanswered_runs": len(set(per_delivery) - accepted),
        "succeeded": sum(state == "success" for _, state in runs),
    }


# tick -----------------------------------------------------------------------------------

TICK_PREFIX = "tick-"


def tick_rows(count: int, due: int) -> list[dict]:
    """``count`` daily DAGs, the first ``due`` of them owed a run (next_run_at passed)."""
    now = utcnow()
    return [
        {
            "dag_id": f"{TICK_PREFIX}{i:05d}",
            "created_at": now - timedelta(days=2),
            "updated_at": now,
            "next_run_at": now - timedelta(hours=1) if i < due else now + timedelta(days=1),
        }
        for i in range(count)
    ]


def insert_tick_dags(count: int, due: int) -> None:
    spec = parse_dag_spec(
        {"dag_id": "tick", "schedule": "@daily", "tasks": [{"task_id": "t", "function": "noop"}]},
        {"noop"},
    ).to_dict()
    with db.db.connection_context(), db.db.atomic():
        for rows in peewee.chunked(tick_rows(count, due), 500):
            Dag.insert_many(rows).execute()
        dags = Dag.select(Dag.id, Dag.dag_id).where(Dag.dag_id.startswith(TICK_PREFIX))
        versions = [version_row(dag, spec) for dag in dags]
        for rows in peewee.chunked(versions, 500):
            DagVersion.insert_many(rows).execute()


def version_row(dag: Dag, spec: dict) -> dict:
    own = {**spec, "dag_id": dag.dag_id}
    digest = hashlib.sha256(json.dumps(own, sort_keys=True).encode()).hexdigest()
    return {"dag": dag.id, "version": 1, "spec": own, "sha256": digest}


def remove_tick_dags() -> None:
    """Delete them with their runs (the foreign keys cascade), and the messages they sent."""
    with db.db.connection_context():
        Dag.delete().where(Dag.dag_id.startswith(TICK_PREFIX)).execute()
    broker.huey.flush()
    clock.huey.flush()


def tick(settings, count: int, due: int) -> dict:
    """The clock's tick (app/clock/periodic.py), in this process, over ``count`` DAGs of which
    ``due`` are due: it creates and starts their runs. Run it with the worker and clock stopped."""
    insert_tick_dags(count, due)
    try:
        with db.db.connection_context():
            started = time.perf_counter()
            counts = clock.tick(utcnow(), settings.queued_timeout_s, settings.heartbeat_timeout_s)
            took = time.perf_counter() - started
    finally:
        remove_tick_dags()
    return {"dags": count, "due": due, "duration_s": round(took, 3), **counts}
