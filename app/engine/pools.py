"""Pools: named slot counts shared across DAGs (``pool`` on a task)."""

import re

from app.domain.errors import Invalid, NotFound
from app.engine import slots
from app.store.models import Pool

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")  # a pool's name (the API's contract)


def put(name: str, payload) -> tuple[Pool, bool]:
    """Create or resize a pool; returns (pool, created)."""
    errors = []
    if not NAME.match(name):
        errors.append({"field": "name", "message": "letters, digits, '_', '.', '-'"})
    if not isinstance(payload, dict) or set(payload) - {"slots", "description"}:
        raise Invalid([{"field": "", "message": 'the body must be {"slots": n, "description"?}'}])
    count = payload.get("slots")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100_000:
        errors.append({"field": "slots", "message": "must be a whole number from 0 to 100000"})
    if not isinstance(payload.get("description", ""), str):
        errors.append({"field": "description", "message": "must be a string"})
    if errors:
        raise Invalid(errors)
    pool, created = Pool.get_or_create(name=name, defaults={"slots": count})
    pool.slots = count
    pool.description = payload.get("description", pool.description)
    pool.save()
    slots.wake(slots.Gate(None, None, name))  # tries parked on a full pool may fit now
    return pool, created


def get(name: str) -> Pool:
    pool = Pool.get_or_none(Pool.name == name)
    if pool is None:
        raise NotFound(f"no pool {name!r}")
    return pool


def names() -> set[str]:
    return {row.name for row in Pool.select(Pool.name)}
