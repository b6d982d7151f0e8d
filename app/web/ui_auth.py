"""Sign-in for the web UI: an API token is exchanged for Flask's signed session cookie.

The session never holds the token: only the role, the id of the token's row (none for
BRISA_ADMIN_TOKEN), a fingerprint (a prefix of the token's SHA-256) and the id of its
server-side session row. Every request re-checks them, so signing out, revoking or expiring a
token, or changing BRISA_ADMIN_TOKEN, signs its sessions out. Every state-changing request
must carry the session's CSRF token, in a hidden ``csrf_token`` field or an ``X-CSRF-Token``
header.
"""

import hmac
import secrets
from urllib.parse import urlsplit

from flask import abort, current_app, request, session

from app.domain.timeutil import utcnow
from app.engine import auth
from app.store.models import ApiToken

FINGERPRINT_CHARS = 16


def _fingerprint(token: str) -> str:
    return auth.hash_token(token)[:FINGERPRINT_CHARS]


def sign_in(token: str) -> str:
    """Check the token as the API does (raises Unauthorized); start a fresh session."""
    token = token.strip()
    role = auth.authenticate("Bearer " + token, current_app.config["BRISA"].admin_token)
    row = ApiToken.get_or_none(ApiToken.token_hash == auth.hash_token(token))
    admin = current_app.config["BRISA"].admin_token
    token_id = None if admin and hmac.compare_digest(token, admin) else row.id
    session.clear()  # a new session on sign-in: nothing set before it survives
    session.update(role=role, tid=token_id, fp=_fingerprint(token), csrf=secrets.token_urlsafe(32))
    session["sid"] = auth.start_session()
    return role


def sign_out() -> None:
    """End the session on the server too: a copy of its cookie no longer signs anyone in."""
    auth.end_session(session.get("sid"))
    session.clear()


def current_role() -> str | None:
    """The signed-in role, or None when nobody is signed in, the session was signed out or
    is past its lifetime, or the token no longer works."""
    fingerprint, role = session.get("fp"), session.get("role")
    if not fingerprint or role not in auth.ROLES or not auth.session_active(session.get("sid")):
        return None
    if session.get("tid") is None:
        admin = current_app.config["BRISA"].admin_token
        valid = bool(admin) and hmac.compare_digest(_fingerprint(admin), fingerprint)
        return role if valid else None
    row = ApiToken.get_or_none(ApiToken.id == session["tid"])
    if (
        row is None
        or not hmac.compare_digest(row.token_hash[:FINGERPRINT_CHARS], fingerprint)
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= utcnow())
    ):
        return None
    return row.role


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "The form has expired or was not sent by this site: reload and try again.")


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None: no open redirects."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target
