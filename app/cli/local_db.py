"""The operator commands' database: this process's ``DATABASE_URL``, else the embedded default's
SQLite file under ``BRISA_VAR_DIR``. Only ``migrate`` may create it: every other command
finds it there, at the schema this code needs, or fails with one line saying what to do,
leaving no file or folder behind.
"""

import sqlite3
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

import peewee

from app.cli.errors import CliError, UsageError
from app.config import Settings, current
from app.store import db, migrations

DATABASE_ERRORS = (peewee.DatabaseError, peewee.InterfaceError, sqlite3.Error)
MIGRATE = "run `python -m app migrate` (the release step; `make run` runs it) first"


def settings() -> Settings:
    """This process's settings; UsageError naming a variable that does not parse."""
    try:
        return current()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def connected(creates: bool = False):
    """This process's database, bound and connected while the block runs (yields the
    Settings). Unless ``creates``, the database must exist with the schema this code needs.
    A database error in the block becomes a CliError with its first line."""
    config = settings()
    shown = redacted(config.database_url)
    if not creates:
        _must_exist(config)
    try:
        db.ensure_bound()
        db.db.connect(reuse_if_open=True)
    except ValueError as exc:  # a DATABASE_URL of another kind
        raise UsageError(str(exc)) from None
    except (OSError, *DATABASE_ERRORS) as exc:
        raise CliError(f"cannot open the database at {shown}: {_first_line(exc)}") from None
    try:
        if not creates:
            check_schema(shown)
        yield config
    except DATABASE_ERRORS as exc:
        raise CliError(f"the database at {shown} failed: {_first_line(exc)}") from None
    finally:
        db.db.close()


def _must_exist(config: Settings) -> None:
    """The embedded default's file is made by ``migrate`` only (opening SQLite creates it)."""
    if config.embedded:
        path = Path(config.database_url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise CliError(f"no database at {path}: {MIGRATE}")


def check_schema(shown: str) -> None:
    """CliError unless the connected database's schema is the one this code needs."""
    version = migrations.current_version()
    if version == migrations.LATEST:
        return
    if version is None:
        raise CliError(f"the database at {shown} has no schema: {MIGRATE}")
    if version < migrations.LATEST:
        raise CliError(
            f"the database's schema is at version {version}, not {migrations.LATEST}: {MIGRATE}"
        )
    raise CliError(
        f"the database's schema is at version {version}, newer than this Brisa's "
        f"{migrations.LATEST}: upgrade Brisa"
    )


def redacted(url: str) -> str:
    """``url`` without its password: postgres://brisa:***@host/db."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
