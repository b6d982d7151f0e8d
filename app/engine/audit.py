"""The audit log: who changed what, and when."""

import logging

from app.store.db import DB_ERRORS
from app.store.models import AuditEvent

log = logging.getLogger(__name__)


def record(actor: str, action: str, target: str, status: int) -> None:
    """Record a change already made. If the database refuses (busy, down), the change still
    stands: the event goes to the log instead of failing the response."""
    try:
        AuditEvent.create(
            actor=actor[:200], action=action[:200], target=target[:500], status=status
        )
    except DB_ERRORS:
        log.error("audit event not stored: %s %s %s -> %s", actor, action, target, status)


def page(limit: int, before_id: int | None = None) -> list[AuditEvent]:
    query = AuditEvent.select()
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    return list(query.order_by(AuditEvent.id.desc()).limit(limit))
