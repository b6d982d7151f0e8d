"""Fixtures: one integration suite, every backend (the embedded default, Postgres + Redis).

Locally, a backend whose server is not running is skipped; in CI (CI=true) it is a failure.
"""

import atexit
import json
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import peewee
import pytest
import redis

from app import broker, config
from app.clock import periodic as clock
from app.config import Settings, load_settings
from app.domain import outcomes
from app.domain.states import RUN_FINISHED
from app.store import db, migrations
from app.store.models import DagRun, Metric
from app.worker import consumer as worker_consumer


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value (true, 1, yes...)."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


# Any truthy CI (true, 1, yes), as CI services set it: a missing server then fails the run.
IN_CI = env_flag("CI")
# Services are named per test run (database names, Redis database numbers), so two suites
# can run side by side on one machine; each run removes its own at the end.
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"
SERVER_URL = "postgresql://postgres@127.0.0.1:5432"
# Set in the environment too: a process the tests start (an e2e server, the bench's huey)
# uses the same ones rather than claiming its own.
POSTGRES_URL = os.environ.setdefault("BRISA_TEST_DATABASE_URL", f"{SERVER_URL}/brisa_test_{RUN_ID}")
REDIS_SERVER_URL = "redis://127.0.0.1:6379"
REDIS_CLAIM_TTL_S = 4 * 3600  # a crashed run's claim ends by itself
ADMIN_TOKEN = "test-admin-token"
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"


def unavailable(what: str, exc: Exception):
    """Skip locally, fail in CI: a missing server must never turn CI green."""
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_postgres(url: str = POSTGRES_URL) -> None:
    """Postgres answers at ``url``; its database is created if the server lacks it."""
    try:
        _create_database_if_missing(url)
        database = db.open_database(url)
        database.connect()
        database.close()
    except peewee.OperationalError as exc:
        unavailable("PostgreSQL", exc)


def _create_database_if_missing(url: str) -> None:
    name = urlparse(url).path.lstrip("/")
    server = db.open_database(urlunparse(urlparse(url)._replace(path="/postgres")))
    try:
        with server.connection_context():
            exists = server.execute_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                server.execute_sql(f'CREATE DATABASE "{name}"')
                _created_databases.append(url)
    except peewee.ProgrammingError:
        pass  # created meanwhile by another test process
    finally:
        server.close_all()


def redis_db(variable: str) -> str:
    """The Redis URL in ``variable``, else a Redis database (1-15) of this run's own, claimed
    in database 0 until the run ends (``release_services``) or for REDIS_CLAIM_TTL_S, and
    put in ``variable`` for the processes the tests start. Without a server, database 15,
    which the tests needing it skip (or fail, in CI)."""
    if not os.environ.get(variable):
        os.environ[variable] = _claim_redis_db(variable)
    return os.environ[variable]


def _claim_redis_db(purpose: str) -> str:
    try:
        claims = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0", socket_connect_timeout=2)
        for number in range(15, 0, -1):
            if claims.set(f"brisa-test-claim:{number}", RUN_ID, nx=True, ex=REDIS_CLAIM_TTL_S):
                _claimed.append(number)
                return f"{REDIS_SERVER_URL}/{number}"
    except redis.RedisError:
        return f"{REDIS_SERVER_URL}/15"
    raise RuntimeError(f"every Redis database 1-15 is claimed by other test runs ({purpose})")


_claimed: list[int] = []


def release_services() -> None:
    """Drop this run's Postgres databases and give back its Redis databases, flushed (at
    the end of a pytest session, and at exit for other users such as ``python -m tests.bench``)."""
    try:
        claims = redis.Redis.from_url(f"{REDIS_SERVER_URL}/0", socket_connect_timeout=2)
        for number in _claimed:
            redis.Redis.from_url(f"{REDIS_SERVER_URL}/{number}").flushdb()
            if claims.get(f"brisa-test-claim:{number}") == RUN_ID.encode():
                claims.delete(f"brisa-test-claim:{number}")
    except redis.RedisError:
        pass
    for url in _created_databases:
        _drop_database(url)
    _claimed.clear()
    _created_databases.clear()


_created_databases: list[str] = []


def _drop_database(url: str) -> None:
    name = urlparse(url).path.lstrip("/")
    server = db.open_database(urlunparse(urlparse(url)._replace(path="/postgres")))
    try:
        with server.connection_context():
            server.execute_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except peewee.DatabaseError:
        pass
    finally:
        server.close_all()


def pytest_sessionfinish(session, exitstatus):
    release_services()


atexit.register(release_services)


REDIS_URL = redis_db("BRISA_TEST_REDIS_URL")


def require_redis(url: str = REDIS_URL) -> None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)


def reset_postgres(url: str) -> None:
    database = db.open_database(url)
    database.execute_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    database.close()


@dataclass
class Backend:
    name: str
    settings: Settings
    env: dict


def backend_env(name: str, var_dir: Path) -> dict:
    env = {
        "BRISA_VAR_DIR": str(var_dir),
        "SECRET_KEY": "test-secret",
        "BRISA_ADMIN_TOKEN": ADMIN_TOKEN,
        "BRISA_LOAD_EXAMPLES": "0",
    }
    if name == "postgres":
        env.update(DATABASE_URL=POSTGRES_URL, REDIS_URL=REDIS_URL)
    return env


def prepare_backend(name: str, var_dir: Path) -> Backend:
    """Empty database and queue for ``name``, schema migrated, this process bound to them."""
    env = backend_env(name, var_dir)
    if name == "postgres":
        require_postgres()
        require_redis()
        reset_postgres(POSTGRES_URL)
        redis.Redis.from_url(REDIS_URL).flushdb()
    settings = load_settings(env)
    db.bind(settings.database_url)
    broker.rebind(broker.huey, settings)
    broker.rebind(clock.huey, settings)
    with db.db.connection_context():
        migrations.migrate()
    return Backend(name, settings, env)


@pytest.fixture(params=["embedded", "postgres"])
def backend(request, tmp_path, monkeypatch):
    for key in ("DATABASE_URL", "REDIS_URL", "REDIS_TLS_URL"):
        monkeypatch.delenv(key, raising=False)
    chosen = prepare_backend(request.param, tmp_path / "var")
    for key, value in chosen.env.items():
        monkeypatch.setenv(key, value)
    config.current.cache_clear()
    yield chosen
    config.current.cache_clear()
    if not db.db.is_closed():
        db.db.close()


@pytest.fixture
def consumer(backend):
    """The real huey consumer, in this process's threads, as the worker runs it."""
    handlers = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    instance = worker_consumer.huey.create_consumer(
        workers=2,
        periodic=False,
        initial_delay=0.01,
        max_delay=0.05,
        backoff=1.1,
        check_worker_health=False,
    )
    instance.start()
    yield instance
    instance.stop(graceful=True)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.fixture
def client(backend):
    from app.web import create_app

    flask_app = create_app(backend.settings)
    flask_app.testing = True
    return flask_app.test_client()


@pytest.fixture
def admin():
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def wait_for_run(run_id: int, timeout: float = 30) -> DagRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.db.connection_context():
            run = DagRun.get_by_id(run_id)
        if run.state in RUN_FINISHED:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s (state {run.state})")


def poll(probe, timeout: float = 20, what: str = "the condition"):
    """Call ``probe()`` until it returns something truthy, and return that; AssertionError
    naming ``what`` after ``timeout`` seconds. A probe through the test client must not run
    inside a connection_context (the request closes the connection): use this one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def wait_for(probe, timeout: float = 20, what: str = "the condition"):
    """``poll``, with each call of ``probe()`` in a database connection of its own."""

    def connected():
        with db.db.connection_context():
            return probe()

    return poll(connected, timeout, what)


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a killed child of this process stays a
    zombie until it is reaped; an orphan until init reaps it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
    return state not in ("Z", "X")


def wait_until_gone(pid: int, timeout: float = 10) -> bool:
    """Whether ``pid`` stops running within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def dropped_messages() -> float:
    """The messages_dropped_total counter: queue messages the claim discarded."""
    row = Metric.get_or_none(Metric.name == "messages_dropped_total")
    return 0 if row is None else row.value


# A function that prints its process id, then sleeps (args.s seconds, 60 by default): a try
# that stays running, and whose process a test can watch being killed.
PID_THEN_SLEEP = (
    "import os, time\n"
    "def handler(event, context):\n"
    "    print(os.getpid(), flush=True)\n"
    "    time.sleep(event['args'].get('s', 60))\n"
)
STOPPED = outcomes.STOPPED  # how a killed try's log ends


def task_log(client, headers, run_id: int, task_id: str, try_number: int = 1) -> str:
    url = f"/api/v1/runs/{run_id}/tasks/{task_id}/logs?try={try_number}"
    response = client.get(url, headers=headers)
    return response.get_json()["text"] if response.status_code == 200 else ""


def running_pid(client, headers, run_id: int, task_id: str) -> int:
    """The process id a PID_THEN_SLEEP try printed, once its log holds it."""
    text = poll(lambda: task_log(client, headers, run_id, task_id).strip(), what="the pid")
    return int(text.split()[0])


def deploy_source(client, headers, name: str, source: str, **fields):
    body = {"name": name, "source": source, **fields}
    response = client.post("/api/v1/functions", json=body, headers=headers)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def deploy_examples(client, headers) -> None:
    for path in sorted(FUNCTIONS_DIR.glob("*.py")):
        deploy_source(client, headers, path.stem, path.read_text())
    for path in sorted(FUNCTIONS_DIR.glob("*.json")):
        spec = json.loads(path.read_text())
        response = client.put(f"/api/v1/dags/{spec['dag_id']}", json=spec, headers=headers)
        assert response.status_code in (200, 201), response.get_json()


def edited_examples(folder: Path) -> Path:
    """A copy of functions/ in ``folder`` with one function and one DAG changed."""
    shutil.copytree(FUNCTIONS_DIR, folder)
    (folder / "hello.py").write_text((folder / "hello.py").read_text() + "\n# edited\n")
    spec = json.loads((folder / "example_pipeline.json").read_text())
    spec["schedule"] = "@daily"
    (folder / "example_pipeline.json").write_text(json.dumps(spec))
    return folder


@pytest.fixture
def real_index(monkeypatch, tmp_path):
    """The machine's own package index settings and a fresh uv cache; skipped locally (failed in
    CI, where the registry is reachable) when no index answers for a small real package."""
    from app.engine.environments import ResolutionError, resolve

    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    try:
        resolve(("six",), timeout_s=60)
    except ResolutionError as exc:
        unavailable("a package index", exc)
