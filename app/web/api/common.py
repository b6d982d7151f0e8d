"""What every route under /api/v1 shares: the parent blueprint ``api`` whose hooks
authenticate each request and audit each accepted change, the role guard ``needs``, and the
parsers of the JSON body and of query arguments."""

import re
from functools import wraps

from flask import Blueprint, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.domain import strict_json
from app.domain.errors import BadRequest, Invalid, UnsupportedMediaType
from app.engine import audit, auth

# The resource blueprints are nested in this one (app/web/api/__init__.py): they inherit its
# URL prefix and its hooks, so no /api/v1 route escapes authentication or the audit log.
api = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_PAGE = 100
CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


@api.before_request
def authenticate():
    settings = current_app.config["BRISA"]
    g.principal = auth.identify(request.headers.get("Authorization"), settings.admin_token)
    g.role = g.principal.role


@api.after_request
def audit_changes(response):
    """Every accepted change is recorded: who, which route, which path, the status."""
    if request.method in CHANGES and response.status_code < 400 and g.get("principal"):
        rule = request.url_rule.rule if request.url_rule else request.path
        audit.record(
            g.principal.actor, f"{request.method} {rule}", request.path, response.status_code
        )
    return response


def needs(role: str):
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            auth.require(g.role, role)
            return view(*args, **kwargs)

        return guarded

    return decorate


def body() -> bytes:
    """The request's body; 413 over BRISA_MAX_BODY_BYTES, also when it came chunked (no
    Content-Length: werkzeug stops reading at the cap, so a longer one would be cut)."""
    raw = request.get_data(cache=True)
    if len(raw) > current_app.config["BRISA"].max_body_bytes:
        raise RequestEntityTooLarge()
    return raw


def json_body(optional: bool = False):
    raw = body()
    if not raw.strip():
        if optional:
            return None
        raise BadRequest("a JSON body is required")
    if not request.is_json:
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    try:
        value = strict_json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if strict_json.has_nul(value):
        raise Invalid([{"field": "", "message": "strings may not contain NUL (\\u0000)"}])
    return value


_DIGITS = re.compile("[0-9]{1,19}")  # ASCII only: str.isdigit accepts "²", which int() refuses


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        raise Invalid([{"field": name, "message": f"must be a whole number from {low} to {high}"}])
    return int(value)


def flag_arg(name: str) -> bool:
    """A true/false query parameter (absent: false); anything but true, false, 1 or 0 is a
    422, so a typo never passes for false."""
    value = request.args.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise Invalid([{"field": name, "message": "must be true or false"}])
    return value in ("true", "1")


def float_arg(name: str, high: float) -> float | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number <= high:
        raise Invalid([{"field": name, "message": f"must be a number of seconds from 0 to {high}"}])
    return number
