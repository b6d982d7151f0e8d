"""The history benchmark (#18): how long the API, /metrics and the UI take to answer while a
long history is kept, and how many SQL statements each of those requests makes.

    python -m tests.bench.history [--quick] [--backend postgres|embedded]

``measure`` fills a fresh database of this run's own (Postgres: ``brisa_history_<run id>``,
dropped afterwards; embedded: a SQLite file in a temporary folder) with 102 DAGs (101 small
ones of 2-5 tasks, and ``big200`` of 200 tasks), RUNS finished runs (QUICK_RUNS with
``quick``) and their task instances and tries, by a few INSERT ... SELECT statements; then
asks for each URL of ``requests_measured`` from this process's Flask test client, signed in
(the admin token for the API, a UI session for the UI), WARM_UPS times unmeasured and TIMES
times measured.
Each key of the answer is {"p50_ms": median server time, "statements": the SQL statements
one request makes}; "runs_kept" is how many runs the database held. Figures, not asserts.

The history is modelled on real runs: of every 1,000 runs, 20 are of big200, 100 invoke one
of 8 functions and 880 are of the small DAGs in turn; one in 20 failed (its last task
failed), one task instance in 25 took two tries, tries took 20 ms to 9 s.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee

from app import broker
from app.config import Settings, load_settings
from app.domain.dagspec import parse_dag_spec
from app.engine.metrics import HISTOGRAM_SHARDS
from app.store import db, migrations
from app.store.models import (
    SLOWEST_BUCKET,
    TRY_DURATION_BOUNDS,
    Dag,
    DagRun,
    DagVersion,
    Function,
    FunctionVersion,
)
from app.web import create_app
from tests.conftest import (
    ADMIN_TOKEN,
    RUN_ID,
    SERVER_URL,
    _drop_database,
    backend_env,
    require_postgres,
    require_redis,
)

RUNS, QUICK_RUNS = 50_000, 500
SMALL_DAGS, BIG_TASKS, FUNCTIONS = 101, 200, 8
BIG_DAG = "big200"
SLOTS = 1000  # the mix of runs repeats every SLOTS runs
WARM_UPS, TIMES = 2, 20
RUN_SPACING_S = 60  # between two runs' logical dates
START = "2025-01-01 00:00:00"  # the first run's
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def requests_measured(big_run: int) -> dict[str, str]:
    """Key -> URL; ``big_run`` is the newest run of big200."""
    return {
        "metrics": "/metrics",
        "api_dags": "/api/v1/dags",
        "api_dag_runs_big200": f"/api/v1/dags/{BIG_DAG}/runs?limit=100",
        "api_run_big200": f"/api/v1/runs/{big_run}",
        "ui_index": "/",
        "ui_index_poll": "/ui/api/dags",
        "ui_dag_small": "/dags/small_001",
        "ui_dag_big200": f"/dags/{BIG_DAG}",
        "ui_grid_poll_big200": f"/ui/api/dags/{BIG_DAG}/grid",
    }


def measure(backend: str, quick: bool) -> dict:
    """Fill a fresh database of ``backend`` (postgres or embedded), then time each request of
    ``requests_measured``; see the module's docstring for the answer's shape."""
    with _fresh_database(backend) as settings:
        started = time.monotonic()
        with db.db.connection_context():
            kept, big_run = fill(QUICK_RUNS if quick else RUNS)
        print(f"filled {kept} runs in {time.monotonic() - started:.1f} s", file=sys.stderr)
        client = _signed_in_client(settings)
        results = {key: _timed(client, url) for key, url in requests_measured(big_run).items()}
    return {**results, "runs_kept": kept}


@contextmanager
def _fresh_database(backend: str) -> Iterator[Settings]:
    """This process bound to an empty, migrated database (and, on Postgres, a Redis queue)
    of its own, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="brisa-history-"))
    env = backend_env(backend, folder / "var")
    if backend == "postgres":
        env["DATABASE_URL"] = f"{SERVER_URL}/brisa_history_{RUN_ID}"
        require_postgres(env["DATABASE_URL"])
        require_redis(env["REDIS_URL"])
    settings = load_settings(env)
    try:
        db.bind(settings.database_url, settings)
        broker.rebind(broker.huey, settings)
        with db.db.connection_context():
            migrations.migrate()
        yield settings
    finally:
        if not db.db.is_closed():
            db.db.close()
        if backend == "postgres":
            _drop_database(env["DATABASE_URL"])
        shutil.rmtree(folder, ignore_errors=True)


# Filling --------------------------------------------------------------------------------


class BenchPlan(peewee.Model):
    """Which DAG (or function, for an invoke) the runs in one slot of SLOTS are of."""

    slot = peewee.IntegerField(primary_key=True)
    run_type = peewee.CharField()
    dag_pk = peewee.IntegerField(null=True)
    version_pk = peewee.IntegerField(null=True)
    function_pk = peewee.IntegerField(null=True)
    max_active_tasks = peewee.IntegerField(null=True)

    class Meta:
        database = db.db
        table_name = "bench_plan"


class BenchTask(peewee.Model):
    """A task of a DAG's current version (or an invoke's one task), as a run's task
    instances copy it."""

    dag_pk = peewee.IntegerField(null=True)
    function_pk = peewee.IntegerField(null=True)
    position = peewee.IntegerField()
    last = peewee.BooleanField()
    task_id = peewee.CharField()
    version_pk = peewee.IntegerField()
    upstream = peewee.TextField()
    downstream = peewee.TextField()

    class Meta:
        database = db.db
        table_name = "bench_task"


def fill(runs: int) -> tuple[int, int]:
    """The DAGs, functions and ``runs`` finished runs; returns (runs kept, big200's newest run)."""
    with db.db.atomic():
        versions = _functions()
        dags = _dags(versions)
        db.db.create_tables([BenchPlan, BenchTask], temporary=True)
        BenchPlan.insert_many(_plan(dags, versions)).execute()
        for batch in peewee.chunked(_tasks(dags, versions), 100):
            BenchTask.insert_many(batch).execute()
        for statement in _fill_statements(runs):
            # psycopg2 reads % as a parameter's mark even when there are none: %% is a %
            db.db.execute_sql(statement.replace("%", "%%") if db.is_postgres() else statement)
        db.db.drop_tables([BenchPlan, BenchTask])
    if db.is_postgres():
        db.db.execute_sql("VACUUM ANALYZE")  # as autovacuum leaves a database that ran a while
    big = Dag.get(Dag.dag_id == BIG_DAG)
    newest = DagRun.select(peewee.fn.MAX(DagRun.id)).where(DagRun.dag == big).scalar()
    return DagRun.select().count(), newest


def _functions() -> dict[str, FunctionVersion]:
    """FUNCTIONS functions, each with one version; by name."""
    versions = {}
    for number in range(FUNCTIONS):
        function = Function.create(name=f"f{number}")
        versions[function.name] = FunctionVersion.create(
            function=function,
            version=1,
            source="def handler(event, context):\n    return {'n': 1}\n",
            sha256="0" * 64,
            handler="handler",
            runtime="python",
            timeout=60,
            memory_mb=256,
            env={},
        )
    return versions


def _dags(versions: dict[str, FunctionVersion]) -> dict[str, DagVersion]:
    """The small DAGs and big200, each with 1-3 versions; their current versions by dag_id."""
    shapes = {f"small_{k:03d}": 2 + k % 4 for k in range(SMALL_DAGS)} | {BIG_DAG: BIG_TASKS}
    current = {}
    for k, (dag_id, width) in enumerate(shapes.items()):
        dag = Dag.create(dag_id=dag_id)
        for number in range(1, 2 + k % 3):
            spec = _spec(dag_id, width, number, set(versions))
            current[dag_id] = DagVersion.create(dag=dag, version=number, spec=spec, sha256="0" * 64)
    return current


def _spec(dag_id: str, width: int, number: int, functions: set[str]) -> dict:
    """A stored spec of ``width`` tasks: each after the one or two before it."""
    tasks = [
        {
            "task_id": f"task_{i:03d}",
            "function": f"f{i % FUNCTIONS}",
            "upstream": [f"task_{j:03d}" for j in (i - 2, i - 1) if j >= 0 and (i + j) % 3],
            "args": {"step": i},
        }
        for i in range(width)
    ]
    payload = {"dag_id": dag_id, "description": f"history, version {number}", "tasks": tasks}
    return parse_dag_spec(payload, functions).to_dict()


def _plan(dags: dict[str, DagVersion], versions: dict[str, FunctionVersion]) -> list[dict]:
    small = [v for dag_id, v in dags.items() if dag_id != BIG_DAG]
    rows = []
    for slot in range(SLOTS):
        if slot % 10 == 1:  # an invoke
            function = versions[f"f{slot // 10 % FUNCTIONS}"].function_id
            rows.append({"slot": slot, "run_type": "invoke", "function_pk": function})
            continue
        version = dags[BIG_DAG] if slot % 50 == 0 else small[slot % len(small)]
        tasks = version.spec["max_active_tasks"]
        row = {"dag_pk": version.dag_id, "version_pk": version.id, "max_active_tasks": tasks}
        rows.append({"slot": slot, "run_type": "manual", **row})
    return rows


def _tasks(dags: dict[str, DagVersion], versions: dict[str, FunctionVersion]) -> list[dict]:
    rows = []
    for version in dags.values():
        tasks = version.spec["tasks"]
        downstream: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
        for task in tasks:
            for upstream in task["upstream"]:
                downstream[upstream].append(task["task_id"])
        rows += [
            {
                "dag_pk": version.dag_id,
                "position": i,
                "last": i == len(tasks) - 1,
                "task_id": t["task_id"],
                "version_pk": versions[t["function"]].id,
                "upstream": json.dumps(t["upstream"]),
                "downstream": json.dumps(downstream[t["task_id"]]),
            }
            for i, t in enumerate(tasks)
        ]
    for name, version in versions.items():
        rows.append(
            {
                **{"function_pk": version.function_id, "position": 0, "last": True},
                **{"task_id": name, "version_pk": version.id},
                **{"upstream": "[]", "downstream": "[]"},
            }
        )
    return rows


def _after(start: str, seconds: str) -> str:
    """SQL for the time ``seconds`` (an SQL expression) after ``start`` (SQL)."""
    if db.is_postgres():
        return f"({start} + ({seconds}) * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', {start}, ({seconds}) || ' seconds')"


def _fill_statements(runs: int) -> list[str]:
    """The runs, their task instances (a DAG run's joined to its DAG's tasks, an invoke's to
    its function's), their first tries, the second tries, and the histogram of them all."""
    return [
        _run_rows(runs),
        _task_rows("t.dag_pk = r.dag_id"),
        _task_rows("r.dag_id IS NULL AND t.function_pk = r.function_id"),
        _try_rows(1),
        _try_rows(2),
        _histogram_rows(),
    ]


def _run_rows(runs: int) -> str:
    start = f"TIMESTAMP '{START}'" if db.is_postgres() else f"'{START}'"
    at = f"i * {RUN_SPACING_S}"
    return f"""
        INSERT INTO dag_run (dag_id, dag_version_id, function_id, run_type, logical_date, state,
            created_at, started_at, finished_at, max_active_tasks, callback_attempt)
        WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < {runs})
        SELECT p.dag_pk, p.version_pk, p.function_pk, p.run_type, {_after(start, at)},
            CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'success' END, {_after(start, at)},
            {_after(start, at + " + 0.05")}, {_after(start, at + " + 30")}, p.max_active_tasks, 0
        FROM series JOIN bench_plan p ON p.slot = i % {SLOTS}
        ORDER BY i"""


def _task_rows(join: str) -> str:
    tries = "CASE WHEN (r.id + t.position) % 25 = 0 THEN 2 ELSE 1 END"
    failed = "r.state = 'failed' AND t.last"
    took = "20 + ((r.id * 31 + t.position * 7) % 97) * (r.id % 7 + 1) * 13"
    began = _after("r.started_at", "t.position")
    ended = _after("r.started_at", f"t.position + ({took}) / 1000.0")
    return f"""
        INSERT INTO task_instance (run_id, dag_pk, task_id, function_version_id, state,
            try_number, max_tries, retry_delay, retry_backoff, max_retry_delay, timeout, args,
            upstream, downstream, trigger_rule, parked, queued_at, started_at, finished_at,
            worker, result, error)
        SELECT r.id, r.dag_id, t.task_id, t.version_pk,
            CASE WHEN {failed} THEN 'failed' ELSE 'success' END, {tries}, 2, 10, FALSE, 3600,
            60, '{{}}', t.upstream, t.downstream, 'all_success', FALSE, r.started_at, {began},
            {ended}, 'bench-worker', CASE WHEN {failed} THEN NULL ELSE '{{"n":1}}' END,
            CASE WHEN {failed} THEN 'ValueError: on purpose' END
        FROM dag_run r JOIN bench_task t ON {join}"""


def _try_rows(number: int) -> str:
    """Every task instance's try ``number`` (1: failed where a second one followed)."""
    state, error = "state", "error"
    if number == 1:
        state = "CASE WHEN try_number = 2 THEN 'failed' ELSE state END"
        error = "CASE WHEN try_number = 2 THEN 'TimeoutError: on purpose' ELSE error END"
    return f"""
        INSERT INTO task_try (task_instance_id, try_number, state, started_at, finished_at,
            worker, error)
        SELECT id, {number}, {state}, started_at, finished_at, worker, {error}
        FROM task_instance WHERE try_number >= {number}"""


def _histogram_rows() -> str:
    """The tries in the try-duration histogram (TryDuration), spread over its shards, as if
    each had been counted when it ended."""
    seconds = (
        "EXTRACT(EPOCH FROM finished_at - started_at)"
        if db.is_postgres()
        else "(julianday(finished_at) - julianday(started_at)) * 86400"
    )
    bounds = " ".join(f"WHEN {seconds} <= {b} THEN '{b}'" for b in TRY_DURATION_BOUNDS)
    return f"""
        INSERT INTO try_duration (le, shard, tries, seconds)
        SELECT CASE {bounds} ELSE '{SLOWEST_BUCKET}' END, task_instance_id % {HISTOGRAM_SHARDS},
            COUNT(*), SUM({seconds})
        FROM task_try WHERE started_at IS NOT NULL GROUP BY 1, 2"""


# Measuring ------------------------------------------------------------------------------


def _signed_in_client(settings: Settings):
    flask_app = create_app(settings)
    flask_app.testing = True
    client = flask_app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    signed_in = client.post("/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf})
    assert signed_in.status_code == 303, signed_in.status_code  # to the DAGs page
    return client


def _timed(client, url: str) -> dict:
    """The median time of TIMES requests of ``url`` (after WARM_UPS), and the most
    statements one of them made."""
    for _ in range(WARM_UPS):
        _get(client, url)
    seconds, statements = [], []
    for _ in range(TIMES):
        with counting_statements() as made:
            started = time.perf_counter()
            _get(client, url)
            seconds.append(time.perf_counter() - started)
        statements.append(len(made))
    return {"p50_ms": round(statistics.median(seconds) * 1000, 2), "statements": max(statements)}


def _get(client, url: str) -> None:
    response = client.get(url, headers=AUTH)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.get_data()[:300]!r}")


@contextmanager
def counting_statements() -> Iterator[list[str]]:
    """The SQL statements this process sends to the bound database meanwhile."""
    made: list[str] = []
    hooks = db.db.obj.query_hooks
    hook = lambda event: made.append(event.sql)  # noqa: E731
    hooks.append(hook)
    try:
        yield made
    finally:
        hooks.remove(hook)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.history")
    parser.add_argument("--backend", choices=("postgres", "embedded"), default="postgres")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs, not {RUNS}")
    args = parser.parse_args()
    result = measure(args.backend, args.quick)
    print(f"{args.backend}, {result['runs_kept']} runs kept:")
    for key, figures in result.items():
        if key != "runs_kept":
            print(
                f"  {key:<22} {figures['p50_ms']:>9.2f} ms  {figures['statements']:>5} statements"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
