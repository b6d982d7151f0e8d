"""Settings, read from the environment only (12-factor): every tunable of Brisa in one place,
each with its unit and its environment variable.

``VARIABLES`` is the table of them (variable, default, unit, meaning) and ``load_settings``
reads the environment through it, so the documentation cannot drift from the code:
``markdown_table()`` renders it for docs/configuration.md. A variable that is unset takes its
default; one that is set to a value its unit cannot parse is an error naming the variable.

With no DATABASE_URL / REDIS_URL, Brisa runs on the embedded default: SQLite (WAL) for the
metadata and huey's SQLite storage for the queue, both under ``BRISA_VAR_DIR`` (``var/``).

Reading the settings has no side effect (``import app.cli`` creates no file): on the embedded
default without SECRET_KEY, the key kept in ``var/secret_key`` is made on the first use of
``Settings.secret_key``, not when the settings are read.

A few variables belong to a process's command line and are read there, not here: gunicorn's
``WEB_CONCURRENCY``, ``BRISA_WEB_THREADS`` and ``BRISA_BIND`` (infra/gunicorn.conf.py), the
worker's ``BRISA_WORKER_THREADS`` and ``BRISA_SHUTDOWN_TIMEOUT`` (Procfile),
``BRISA_LOG_LEVEL`` and ``BRISA_LOG_JSON`` (app/log_setup.py), ``BRISA_SECURE_COOKIES``
(app/web/__init__.py); and the CLI's ``BRISA_URL`` and ``BRISA_TOKEN``.
"""

import functools
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """This process's settings; each field's variable, default and unit are in VARIABLES."""

    # Where things are
    database_url: str  # postgres://, postgresql:// or sqlite:///path
    redis_url: str | None  # None: huey's SQLite storage under var_dir
    var_dir: Path
    port: int
    admin_token: str | None
    # Functions and tries
    default_timeout_s: float  # a function's wall-clock limit when it sets none
    default_memory_mb: int  # a function's address-space limit when it sets none
    max_source_bytes: int  # a function's source (or JSON spec) above this is refused
    load_check_timeout_s: float  # a deploy's check that the module loads, killed after this
    log_cap_bytes: int  # log kept per try; the rest is dropped with a marker
    result_cap_bytes: int  # a bigger JSON result fails the try
    try_max_processes: int  # RLIMIT_NPROC while a try runs (0: as the worker has it)
    try_max_file_bytes: int  # RLIMIT_FSIZE: the largest file a try may write (0: no limit)
    sandbox_tick_s: float  # how often a running try's supervisor flushes logs, checks for cancel
    sandbox_spares: int  # sandbox children a worker keeps forked ahead of its next try
    # Execution environments and warm executors
    env_dir: Path | None  # the cache of built environments (None: var_dir/envs/py<X.Y>)
    env_cache_mb: int  # environments above this total are evicted, least recently used first
    resolve_timeout_s: float  # resolving a function's requirements to a lock, at deploy
    build_timeout_s: float  # building an environment from a lock
    executor_max_tries: int  # a warm executor is recycled after serving this many tries
    executor_idle_s: float  # a warm executor idle this long is stopped
    executor_rss_growth_mb: int  # a warm executor whose RSS grew this much is recycled
    executors_per_worker: int  # warm executors one worker process keeps at most
    # Worker, clock and queue
    queued_timeout_s: float  # a task queued and unclaimed this long is enqueued again
    heartbeat_s: float  # how often a running try refreshes its heartbeat
    heartbeat_timeout_s: float  # a running try silent this long is dead: the clock fails it
    tick_s: float  # how often the clock ticks (a divisor of 60)
    db_retry_s: float  # how long a worker keeps retrying to record an outcome while the DB is down
    retention_days: int | None  # the clock deletes finished runs older than this, daily
    # The database
    db_pool_size: int  # Postgres connections a process keeps open at most
    db_pool_stale_s: float  # a pooled Postgres connection idle this long is reopened
    sqlite_busy_timeout_ms: int  # how long a SQLite writer waits for another's lock
    # The API
    max_body_bytes: int  # request bodies above this are refused with 413
    max_secret_bytes: int  # a secret's value above this is refused
    invoke_poll_s: float  # the longest pause between looks at a run an invoke?wait= awaits
    webhook_replay_window_s: float  # a signed delivery timestamped further off is refused
    callback_attempts: int  # tries at calling back an async invoke's receiver
    callback_timeout_s: float  # how long one callback waits for the receiver's answer
    callback_max_delay_s: float  # the longest wait between two callback attempts
    callback_concurrency: int  # callbacks one worker process sends at once
    egress_allow: str  # hosts and networks callbacks may reach besides public addresses
    # The embedded default
    load_examples: bool  # deploy functions/ on first start
    # SECRET_KEY as set in the environment (None: the embedded default's var/secret_key)
    configured_secret_key: str | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def environments_dir(self) -> Path:
        """Where built environments live: BRISA_ENV_DIR, or var/envs/py<X.Y> (a lock is for
        one Python version, so the cache is per interpreter)."""
        tag = f"py{sys.version_info.major}.{sys.version_info.minor}"
        return (self.env_dir or self.var_dir / "envs" / tag).resolve()

    @property
    def queue_path(self) -> Path:
        return self.var_dir / "queue.db"

    @functools.cached_property
    def secret_key(self) -> str:
        """SECRET_KEY; without it, a key kept in var/secret_key, made on first use."""
        return self.configured_secret_key or _kept_secret_key(self.var_dir)


def _kept_secret_key(var_dir: Path) -> str:
    """The key in ``var_dir/secret_key``, written once. Processes starting together race to
    write it: each writes its own to a temporary file and links it into place, which only one
    link can do; every process then reads the one that won."""
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        candidate = var_dir / f".secret_key.{os.getpid()}"
        candidate.write_text(secrets.token_urlsafe(32))
        candidate.chmod(0o600)
        try:
            os.link(candidate, key_file)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return key_file.read_text().strip()


# The table ------------------------------------------------------------------------------


def _or_none(value: str) -> str | None:
    return value or None


def _flag(value: str) -> bool:
    return value == "1"


def _optional_path(value: str) -> Path | None:
    return Path(value) if value else None


def _optional_int(value: str) -> int | None:
    return int(value) if value else None


@dataclass(frozen=True)
class Variable:
    """One environment variable: the Settings field it sets, its default and unit."""

    name: str
    field: str
    default: object  # the value when unset (None: unset, or derived as the meaning says)
    unit: str  # of the value: seconds, bytes, MiB, ... ("" for a URL, a path, a switch)
    meaning: str
    parse: Callable[[str], object] = str

    def read(self, environ: Mapping[str, str]) -> object:
        value = environ.get(self.name)
        if value is None:
            return self.default
        try:
            return self.parse(value)
        except ValueError:
            wanted = f"a number of {self.unit}" if self.unit else "a valid value"
            raise ValueError(f"{self.name}={value!r}: expected {wanted}") from None


MiB = 1024 * 1024
VARIABLES: tuple[Variable, ...] = (
    # Where things are
    Variable(
        "DATABASE_URL",
        "database_url",
        None,
        "",
        "`postgres://`, `postgresql://` or `sqlite:///path`;"
        " unset: `sqlite:///$BRISA_VAR_DIR/brisa.db`",
        _or_none,
    ),
    Variable(
        "REDIS_URL",
        "redis_url",
        None,
        "",
        "the queue; unset: huey's SQLite queue in `$BRISA_VAR_DIR/queue.db`",
        _or_none,
    ),
    Variable(
        "REDIS_TLS_URL",
        "redis_tls_url",
        None,
        "",
        "the queue over TLS; wins over `REDIS_URL`",
        _or_none,
    ),
    Variable(
        "BRISA_VAR_DIR",
        "var_dir",
        PROJECT_ROOT / "var",
        "",
        "where the embedded default keeps its files",
        Path,
    ),
    Variable("PORT", "port", 8000, "", "the web process's port", int),
    Variable(
        "SECRET_KEY",
        "configured_secret_key",
        None,
        "",
        "encrypts secrets at rest and signs UI sessions; set it in production, once;"
        " unset: generated into `$BRISA_VAR_DIR/secret_key`",
        _or_none,
    ),
    Variable("BRISA_ADMIN_TOKEN", "admin_token", None, "", "accepted as an admin token", _or_none),
    # Functions and tries
    Variable(
        "BRISA_DEFAULT_TIMEOUT",
        "default_timeout_s",
        300.0,
        "seconds",
        "a function's wall-clock limit when it sets none",
        float,
    ),
    Variable(
        "BRISA_DEFAULT_MEMORY_MB",
        "default_memory_mb",
        512,
        "MiB",
        "a function's address-space limit when it sets none",
        int,
    ),
    Variable(
        "BRISA_MAX_SOURCE_BYTES",
        "max_source_bytes",
        512 * 1024,
        "bytes",
        "a deploy with a larger source (or JSON spec) gets 422",
        int,
    ),
    Variable(
        "BRISA_LOAD_CHECK_TIMEOUT_S",
        "load_check_timeout_s",
        10.0,
        "seconds",
        "a deploy's check that the module loads and defines its handler fails after this",
        float,
    ),
    Variable(
        "BRISA_LOG_CAP_BYTES",
        "log_cap_bytes",
        MiB,
        "bytes",
        "log kept per try; the rest is dropped with a marker",
        int,
    ),
    Variable(
        "BRISA_RESULT_CAP_BYTES",
        "result_cap_bytes",
        MiB,
        "bytes",
        "a larger JSON result fails the try",
        int,
    ),
    Variable(
        "BRISA_TRY_MAX_PROCESSES",
        "try_max_processes",
        4096,
        "processes",
        "RLIMIT_NPROC while a try runs: processes the worker's user may have at once, a fork"
        " bomb's ceiling (Linux counts every process of that user; root is exempt); 0: none",
        int,
    ),
    Variable(
        "BRISA_TRY_MAX_FILE_BYTES",
        "try_max_file_bytes",
        1024 * MiB,
        "bytes",
        "RLIMIT_FSIZE while a try runs: writing a larger file fails with 'File too large';"
        " 0: no limit",
        int,
    ),
    Variable(
        "BRISA_SANDBOX_TICK_S",
        "sandbox_tick_s",
        0.25,
        "seconds",
        "how often a running try's output goes to its log and its cancellation is checked",
        float,
    ),
    Variable(
        "BRISA_SANDBOX_SPARES",
        "sandbox_spares",
        1,
        "processes",
        "sandbox children a worker process keeps forked ahead of its next tries"
        " (0: each try forks its own)",
        int,
    ),
    # Execution environments and warm executors
    Variable(
        "BRISA_ENV_DIR",
        "env_dir",
        None,
        "",
        "where environments built from locks are kept, one folder per lock's sha256;"
        " unset: `$BRISA_VAR_DIR/envs/py<X.Y>`",
        _optional_path,
    ),
    Variable(
        "BRISA_ENV_CACHE_MB",
        "env_cache_mb",
        2048,
        "MiB",
        "built environments above this total are removed, least recently used first",
        int,
    ),
    Variable(
        "BRISA_RESOLVE_TIMEOUT_S",
        "resolve_timeout_s",
        120.0,
        "seconds",
        "resolving a function's requirements to a lock (uv), at deploy",
        float,
    ),
    Variable(
        "BRISA_BUILD_TIMEOUT_S",
        "build_timeout_s",
        600.0,
        "seconds",
        "building an environment from a lock (uv), at deploy or a worker's first use",
        float,
    ),
    Variable(
        "BRISA_EXECUTOR_MAX_TRIES",
        "executor_max_tries",
        1000,
        "tries",
        "a warm executor is recycled after serving this many tries",
        int,
    ),
    Variable(
        "BRISA_EXECUTOR_IDLE_S",
        "executor_idle_s",
        300.0,
        "seconds",
        "a warm executor idle this long is stopped",
        float,
    ),
    Variable(
        "BRISA_EXECUTOR_RSS_GROWTH_MB",
        "executor_rss_growth_mb",
        256,
        "MiB",
        "a warm executor whose resident memory grew this much since its first try is recycled",
        int,
    ),
    Variable(
        "BRISA_EXECUTORS_PER_WORKER",
        "executors_per_worker",
        8,
        "processes",
        "warm executors one worker process keeps at most (the least recently used stop first)",
        int,
    ),
    # Worker, clock and queue
    Variable(
        "BRISA_QUEUED_TIMEOUT",
        "queued_timeout_s",
        60.0,
        "seconds",
        "a task may sit queued, unclaimed and with no message waiting this long before the"
        " clock enqueues it again",
        float,
    ),
    Variable(
        "BRISA_HEARTBEAT",
        "heartbeat_s",
        5.0,
        "seconds",
        "between a running try's heartbeats (and cancellation checks)",
        float,
    ),
    Variable(
        "BRISA_HEARTBEAT_TIMEOUT",
        "heartbeat_timeout_s",
        30.0,
        "seconds",
        "of silence after which the clock fails a running try (its worker is dead)",
        float,
    ),
    Variable(
        "BRISA_TICK_SECONDS",
        "tick_s",
        60.0,
        "seconds",
        "between the clock's ticks (a divisor of 60)",
        float,
    ),
    Variable(
        "BRISA_DB_RETRY_S",
        "db_retry_s",
        60.0,
        "seconds",
        "a worker retries recording an outcome while the database is down",
        float,
    ),
    Variable(
        "BRISA_RETENTION_DAYS",
        "retention_days",
        None,
        "days",
        "the clock deletes finished runs older than this, daily; unset: never",
        _optional_int,
    ),
    # The database
    Variable(
        "BRISA_DB_POOL_SIZE",
        "db_pool_size",
        64,
        "connections",
        "Postgres connections one process keeps open at most",
        int,
    ),
    Variable(
        "BRISA_DB_POOL_STALE_S",
        "db_pool_stale_s",
        300.0,
        "seconds",
        "a pooled Postgres connection older than this is closed and opened again",
        float,
    ),
    Variable(
        "BRISA_SQLITE_BUSY_TIMEOUT_MS",
        "sqlite_busy_timeout_ms",
        10000,
        "milliseconds",
        "a SQLite writer waits this long for another process's write lock",
        int,
    ),
    # The API
    Variable(
        "BRISA_MAX_BODY_BYTES",
        "max_body_bytes",
        MiB,
        "bytes",
        "larger request bodies get 413",
        int,
    ),
    Variable(
        "BRISA_MAX_SECRET_BYTES",
        "max_secret_bytes",
        64 * 1024,
        "bytes",
        "a larger secret value gets 422",
        int,
    ),
    Variable(
        "BRISA_INVOKE_POLL_S",
        "invoke_poll_s",
        0.02,
        "seconds",
        "without Redis, the longest pause between two looks at the run an `invoke?wait=` waits for "
        "(with Redis, the run's end notice wakes it)",
        float,
    ),
    Variable(
        "BRISA_WEBHOOK_REPLAY_WINDOW_S",
        "webhook_replay_window_s",
        300.0,
        "seconds",
        "a signed webhook delivery timestamped further from now is refused (replays)",
        float,
    ),
    Variable(
        "BRISA_CALLBACK_ATTEMPTS",
        "callback_attempts",
        8,
        "attempts",
        "tries at POSTing an async invoke's outcome to its `callback_url`",
        int,
    ),
    Variable(
        "BRISA_CALLBACK_TIMEOUT_S",
        "callback_timeout_s",
        5.0,
        "seconds",
        "one callback attempt waits this long for the receiver's answer",
        float,
    ),
    Variable(
        "BRISA_CALLBACK_MAX_DELAY_S",
        "callback_max_delay_s",
        300.0,
        "seconds",
        "the longest wait between two callback attempts (1 s, 2 s, 4 s, ... up to this)",
        float,
    ),
    Variable(
        "BRISA_CALLBACK_CONCURRENCY",
        "callback_concurrency",
        4,
        "callbacks",
        "a worker process sends at most this many at once, on threads of their own (never"
        " the task threads), so slow receivers cannot delay tries",
        int,
    ),
    Variable(
        "BRISA_EGRESS_ALLOW",
        "egress_allow",
        "",
        "hosts, networks",
        "callbacks may reach only public addresses; these too (comma-separated names and"
        " networks, e.g. `hooks.internal,10.0.0.0/8`)",
        str,
    ),
    # The embedded default
    Variable(
        "BRISA_LOAD_EXAMPLES",
        "load_examples",
        True,
        "",
        "`1`: `make run` deploys `functions/` into an empty database",
        _flag,
    ),
)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings ``environ`` (default: os.environ) gives, through VARIABLES. Pure."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {variable.field: variable.read(environ) for variable in VARIABLES}
    values["var_dir"] = var_dir = Path(values["var_dir"]).resolve()
    values["database_url"] = values["database_url"] or f"sqlite:///{var_dir / 'brisa.db'}"
    values["redis_url"] = values.pop("redis_tls_url") or values["redis_url"]
    return Settings(**values)


@functools.cache
def current() -> Settings:
    """This process's settings, read once (tests clear the cache after changing the env)."""
    return load_settings()


def markdown_table() -> str:
    """VARIABLES as the table of docs/configuration.md."""
    rows = ["| variable | default | unit | what |", "|---|---|---|---|"]
    for variable in VARIABLES:
        default = _shown(variable.default)
        rows.append(f"| `{variable.name}` | {default} | {variable.unit} | {variable.meaning} |")
    return "\n".join(rows) + "\n"


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT):
        return f"`./{default.relative_to(PROJECT_ROOT)}`"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)
