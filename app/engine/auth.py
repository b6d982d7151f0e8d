"""API tokens: random, shown once, stored only as SHA-256, compared in constant time; and the
web UI's sessions, kept server-side so signing out ends them."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.errors import Forbidden, Invalid, NotFound, Unauthorized
from app.domain.timeutil import utcnow
from app.store.db import Compiled, Slot
from app.store.models import ApiToken, UiSession

ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
TOKEN_PREFIX = "brisa_"  # marks a Brisa token (secret scanners match on it)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(role: str, name: str = "", expires_in_days: float | None = None) -> str:
    """A new token of ``role``, printed or returned once; only its SHA-256 is kept."""
    if role not in ROLES:
        raise Invalid([{"field": "role", "message": f"must be one of: {', '.join(ROLES)}"}])
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    ApiToken.create(name=name, role=role, token_hash=hash_token(token), expires_at=expires_at)
    return token


@dataclass(frozen=True)
class Principal:
    role: str
    actor: str  # who, for the audit log: "token 7 (ci)" or "BRISA_ADMIN_TOKEN"


def identify(header: str | None, admin_token: str | None) -> Principal:
    """Who sends this Authorization header; raises Unauthorized."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'")
    token = token.strip()
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin", "BRISA_ADMIN_TOKEN")
    # The lookup is by hash, so timing reveals nothing about the token itself.
    row = _BY_HASH.first(token_hash=hash_token(token))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked token")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("the token has expired")
    return Principal(row.role, describe(row))


_BY_HASH = Compiled(  # asked on every request: compiled (app/store/db.py)
    lambda: ApiToken.select().where(ApiToken.token_hash == Slot("token_hash")).limit(1)
)


def describe(row: ApiToken) -> str:
    return f"token {row.id}" + (f" ({row.name})" if row.name else "")


def authenticate(header: str | None, admin_token: str | None) -> str:
    """The role of the bearer token in an Authorization header; raises Unauthorized."""
    return identify(header, admin_token).role


def revoke(token_id: int) -> ApiToken:
    row = ApiToken.get_or_none(ApiToken.id == token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        ApiToken.update(revoked_at=utcnow()).where(ApiToken.id == token_id).execute()
    return ApiToken.get_by_id(token_id)


def require(role: str, needed: str) -> None:
    if ROLES.index(role) < ROLES.index(needed):
        raise Forbidden(f"this needs the {needed} role; the token has {role}")


SESSION_LIFETIME = timedelta(days=30)  # as Airflow's session_lifetime_minutes default


def start_session(now: datetime | None = None) -> str:
    """A new web UI session; returns its id (for the cookie; only its SHA-256 is stored).
    Sessions past SESSION_LIFETIME are deleted on the way."""
    now = now or utcnow()
    UiSession.delete().where(UiSession.started_at < now - SESSION_LIFETIME).execute()
    sid = secrets.token_urlsafe(32)
    UiSession.create(sid_hash=hash_token(sid), started_at=now)
    return sid


def session_active(sid: str | None, now: datetime | None = None) -> bool:
    """Whether the session with this id was started, is not signed out, and is younger
    than SESSION_LIFETIME."""
    if not sid:
        return False
    row = UiSession.get_or_none(UiSession.sid_hash == hash_token(sid))
    now = now or utcnow()
    return row is not None and row.ended_at is None and row.started_at > now - SESSION_LIFETIME


def end_session(sid: str | None) -> None:
    """Sign out: the session ends for every copy of its cookie."""
    if sid:
        UiSession.update(ended_at=utcnow()).where(
            (UiSession.sid_hash == hash_token(sid)) & UiSession.ended_at.is_null()
        ).execute()
