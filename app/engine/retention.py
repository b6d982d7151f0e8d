"""Retention: delete finished runs (with their task instances, tries and logs) older than a
cutoff, a batch per transaction so no lock is held for long."""

import re
from datetime import datetime, timedelta

from app.store.db import db
from app.store.models import DagRun
from app.store.transitions import RUN_FINISHED

UNITS = {"d": "days", "h": "hours", "m": "minutes"}  # of an age such as "30d"


def parse_age(text: str) -> timedelta:
    """'30d', '12h' or '90m'."""
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise ValueError(f"not an age like 30d, 12h or 90m: {text!r}")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def prune(older_than: timedelta, now: datetime, batch: int = 500) -> int:
    """Delete runs finished before ``now - older_than``; returns how many."""
    cutoff = now - older_than
    deleted = 0
    while True:
        ids = [
            run.id
            for run in DagRun.select(DagRun.id)
            .where(DagRun.state.in_([str(s) for s in RUN_FINISHED]) & (DagRun.finished_at < cutoff))
            .limit(batch)
        ]
        if not ids:
            return deleted
        with db.atomic():  # the database cascades to task instances, tries and logs
            deleted += DagRun.delete().where(DagRun.id.in_(ids)).execute()
