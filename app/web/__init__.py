"""The Flask app factory: the REST API, health checks and the web UI; one JSON error shape
everywhere in the API."""

import logging
import os

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from app import broker
from app import log_setup as logs
from app.config import Settings, current
from app.domain import redact, strict_json
from app.domain.errors import BrisaError
from app.store import db as database
from app.web import api, health, hooks, openapi, ui

log = logging.getLogger(__name__)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, strict (RFC 8259): never writes NaN or Infinity, never reads them; keys
    in the order they were built."""

    sort_keys = False

    def dumps(self, obj, **kwargs) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)

    def loads(self, s, **kwargs):
        return strict_json.loads(s)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or current()
    if database.db.obj is None:
        database.bind(settings.database_url)
    flask_app = Flask(__name__)
    flask_app.config.update(
        SECRET_KEY=settings.secret_key,
        # One byte more than allowed, so that a streamed (chunked) body just over the cap is
        # seen whole and refused (api/common.body), not cut at the cap without a word.
        MAX_CONTENT_LENGTH=settings.max_body_bytes + 1,
        BRISA=settings,
        # The UI's session cookie: never readable by scripts, not sent on cross-site POSTs,
        # and Secure (HTTPS only) unless this is the embedded default over plain http.
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies(settings),
    )
    flask_app.json = StrictJSONProvider(flask_app)
    logs.configure()
    broker.install()  # the outbox of this process sends on huey
    flask_app.url_map.converters["int"] = BoundedInt
    _refuse_nul(flask_app)
    _register_security_headers(flask_app)
    _register_db_hooks(flask_app)
    _register_error_handlers(flask_app)

    flask_app.register_blueprint(api.api)
    flask_app.register_blueprint(health.health)
    flask_app.register_blueprint(hooks.hooks)
    flask_app.register_blueprint(ui.ui)
    flask_app.register_blueprint(openapi.docs)
    return flask_app


def secure_cookies(settings: Settings) -> bool:
    """BRISA_SECURE_COOKIES=1 or 0; unset: on, except on the embedded default (which serves
    plain http on a developer's machine)."""
    value = os.environ.get("BRISA_SECURE_COOKIES", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return not settings.embedded


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# The UI loads only its own script and stylesheet; nothing inline runs; no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _register_security_headers(flask_app: Flask) -> None:
    @flask_app.after_request
    def secure(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class BoundedInt(IntegerConverter):
    """Ids in URLs fit a 64-bit signed integer (SQLite's, Postgres' bigint): a larger one is a
    404 like any unknown id, not an overflow."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def _refuse_nul(flask_app: Flask) -> None:
    """NUL cannot be stored or compared in a Postgres text column: a path or query holding
    one is refused before it reaches the database."""

    @flask_app.before_request
    def no_nul():
        if "\x00" in request.path:
            return _error(404, "not_found", "no such resource", None)
        bad = sorted(name for name, value in request.args.items() if "\x00" in value)
        if bad:
            details = [{"field": name, "message": "may not contain NUL"} for name in bad]
            return _error(422, "invalid", "NUL in the query string", details)
        return None


def _error(status: int, code: str, message: str, details):
    return jsonify({"error": {"code": code, "message": message, "details": details}}), status


def _register_db_hooks(flask_app: Flask) -> None:
    @flask_app.before_request
    def open_connection():
        if request.blueprint != "health":  # /readyz reports an outage instead of failing on it
            database.db.connect(reuse_if_open=True)

    @flask_app.teardown_request
    def close_connection(_exc):
        if not database.db.is_closed():
            database.db.close()


def _register_error_handlers(flask_app: Flask) -> None:
    @flask_app.errorhandler(BrisaError)
    def brisa_error(exc: BrisaError):
        return jsonify(exc.to_dict()), exc.status

    @flask_app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        body = {"error": {"code": code, "message": exc.description, "details": None}}
        return jsonify(body), exc.code

    def database_unavailable(exc: Exception):
        reason = redact.connection_details(str(exc).strip())[:200]
        log.warning("database unavailable: %s: %s", type(exc).__name__, reason)
        database.discard_connection()
        message = "the database is unavailable; try again shortly"
        body = {"error": {"code": "unavailable", "message": message, "details": None}}
        return jsonify(body), 503, {"Retry-After": "5"}

    for error in database.DB_ERRORS:
        flask_app.register_error_handler(error, database_unavailable)

    @flask_app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        body = {"error": {"code": "internal_error", "message": "internal error", "details": None}}
        return jsonify(body), 500
