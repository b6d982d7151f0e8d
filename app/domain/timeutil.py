"""The one clock. Times are naive UTC datetimes in the database and ISO-8601 'Z' on the wire."""

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def ceil_second(value: datetime) -> datetime:
    """Round up to a whole second: huey's Redis schedule keeps whole seconds (rounded down),
    and an ETA must never fire early."""
    whole = value.replace(microsecond=0)
    return whole + timedelta(seconds=1) if value.microsecond else whole


def as_utc(value: datetime) -> datetime:
    """A naive UTC datetime as an aware one (what huey's ``eta`` wants)."""
    return value.replace(tzinfo=UTC)
