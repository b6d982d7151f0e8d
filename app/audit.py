"""The audit log: who changed what, and when."""

from app.models import AuditEvent


def record(actor: str, action: str, target: str, status: int) -> None:
    AuditEvent.create(actor=actor[:200], action=action[:200], target=target[:500], status=status)


def page(limit: int, before_id: int | None = None) -> list[AuditEvent]:
    query = AuditEvent.select()
    if before_id:
        query = query.where(AuditEvent.id < before_id)
    return list(query.order_by(AuditEvent.id.desc()).limit(limit))
