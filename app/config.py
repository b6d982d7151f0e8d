"""Settings, read from the environment only (12-factor), each with its unit.

With no DATABASE_URL / REDIS_URL, Brisa runs on the embedded default: SQLite (WAL) for the
metadata and huey's SQLite storage for the queue, both under ``BRISA_VAR_DIR`` (``var/``).
"""

import functools
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str  # postgres://, postgresql:// or sqlite:///path
    redis_url: str | None  # None: huey's SQLite storage under var_dir
    var_dir: Path
    port: int
    secret_key: str
    admin_token: str | None
    default_timeout_s: float  # a function's wall-clock limit when it sets none
    default_memory_mb: int  # a function's address-space limit when it sets none
    max_body_bytes: int  # request bodies above this are refused with 413
    queued_timeout_s: float  # a task queued and unclaimed this long is enqueued again
    heartbeat_s: float  # how often a running try refreshes its heartbeat
    heartbeat_timeout_s: float  # a running try silent this long is dead: the clock fails it
    tick_s: float  # how often the clock ticks (a divisor of 60)
    db_retry_s: float  # how long a worker keeps retrying to record an outcome while the DB is down
    log_cap_bytes: int  # log kept per try; the rest is dropped with a marker
    result_cap_bytes: int  # a bigger JSON result fails the try
    load_examples: bool  # deploy functions/ on first start (embedded default)
    retention_days: int | None  # the clock deletes finished runs older than this, daily

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def queue_path(self) -> Path:
        return self.var_dir / "queue.db"


def _env_float(environ, name, default):
    return float(environ.get(name, default))


def _secret_key(environ, var_dir: Path) -> str:
    """SECRET_KEY from the environment; on the embedded default, one kept under var/."""
    if environ.get("SECRET_KEY"):
        return environ["SECRET_KEY"]
    key_file = var_dir / "secret_key"
    var_dir.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def load_settings(environ=None) -> Settings:
    environ = os.environ if environ is None else environ
    var_dir = Path(environ.get("BRISA_VAR_DIR", PROJECT_ROOT / "var")).resolve()
    database_url = environ.get("DATABASE_URL") or f"sqlite:///{var_dir / 'brisa.db'}"
    redis_url = environ.get("REDIS_TLS_URL") or environ.get("REDIS_URL") or None
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        var_dir=var_dir,
        port=int(environ.get("PORT", 8000)),
        secret_key=_secret_key(environ, var_dir),
        admin_token=environ.get("BRISA_ADMIN_TOKEN") or None,
        default_timeout_s=_env_float(environ, "BRISA_DEFAULT_TIMEOUT", 300),
        default_memory_mb=int(environ.get("BRISA_DEFAULT_MEMORY_MB", 512)),
        max_body_bytes=int(environ.get("BRISA_MAX_BODY_BYTES", 1024 * 1024)),
        queued_timeout_s=_env_float(environ, "BRISA_QUEUED_TIMEOUT", 60),
        heartbeat_s=_env_float(environ, "BRISA_HEARTBEAT", 5),
        heartbeat_timeout_s=_env_float(environ, "BRISA_HEARTBEAT_TIMEOUT", 30),
        tick_s=_env_float(environ, "BRISA_TICK_SECONDS", 60),
        db_retry_s=_env_float(environ, "BRISA_DB_RETRY_S", 60),
        log_cap_bytes=int(environ.get("BRISA_LOG_CAP_BYTES", 1024 * 1024)),
        result_cap_bytes=int(environ.get("BRISA_RESULT_CAP_BYTES", 1024 * 1024)),
        load_examples=environ.get("BRISA_LOAD_EXAMPLES", "1") == "1",
        retention_days=int(environ["BRISA_RETENTION_DAYS"])
        if environ.get("BRISA_RETENTION_DAYS")
        else None,
    )


@functools.cache
def current() -> Settings:
    """This process's settings, read once (tests clear the cache after changing the env)."""
    return load_settings()
