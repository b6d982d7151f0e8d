"""Secrets: named values encrypted at rest, never returned by the API once stored. A
function lists the ones it may read; a try gets exactly those, in ``context.secrets``, and
their values are masked as ``***`` in its log, result and error. A connection is a secret
whose value is a URL (the ``sql`` and ``http`` runtimes use it by name)."""

import re

from app.config import current
from app.domain.errors import Invalid, NotFound
from app.engine import crypto
from app.store.models import Secret

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")  # a secret's name (the API's contract)
MASK = "***"  # what a secret's value is replaced with in a try's log, result and error


def put(payload) -> tuple[Secret, bool]:
    """Create or replace a secret from ``{"name", "value"}``; returns (secret, created)."""
    if not isinstance(payload, dict) or set(payload) != {"name", "value"}:
        raise Invalid([{"field": "", "message": 'the body must be {"name": ..., "value": ...}'}])
    errors = []
    name, value = payload["name"], payload["value"]
    max_bytes = current().max_secret_bytes
    if not isinstance(name, str) or not NAME.match(name):
        errors.append({"field": "name", "message": "letters, digits, '_', '.', '-' (at most 100)"})
    if not isinstance(value, str) or not value or len(value.encode()) > max_bytes:
        errors.append(
            {"field": "value", "message": f"a non-empty string of at most {max_bytes} bytes"}
        )
    if errors:
        raise Invalid(errors)
    secret, created = Secret.get_or_create(name=name, defaults={"value": crypto.encrypt(value)})
    if not created:
        Secret.update(value=crypto.encrypt(value)).where(Secret.id == secret.id).execute()
    return secret, created


def get(name: str) -> Secret:
    secret = Secret.get_or_none(Secret.name == name)
    if secret is None:
        raise NotFound(f"no secret {name!r}")
    return secret


def values_for(names: list[str]) -> dict[str, str]:
    """The plain values of ``names``, for a try; raises LookupError naming a missing one."""
    rows = {row.name: row for row in Secret.select().where(Secret.name.in_(list(names)))}
    missing = [name for name in names if name not in rows]
    if missing:
        raise LookupError(f"secret {missing[0]!r} does not exist")
    return {name: crypto.decrypt(rows[name].value) for name in names}


def mask(text: str, values) -> str:
    """``text`` with every secret value replaced by ***, longest first."""
    for value in sorted(values, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text
