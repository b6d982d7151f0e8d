"""The Flask app factory: the REST API, health checks; one JSON error shape everywhere."""

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from app import db as database
from app.config import Settings, current
from app.errors import BrisaError

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or current()
    if database.db.obj is None:
        database.bind(settings.database_url)
    flask_app = Flask(__name__)
    flask_app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        BRISA=settings,
        JSON_SORT_KEYS=False,
    )
    flask_app.json.sort_keys = False
    _register_db_hooks(flask_app)
    _register_error_handlers(flask_app)

    from app.web.api import api
    from app.web.health import health

    flask_app.register_blueprint(api)
    flask_app.register_blueprint(health)
    return flask_app


def _register_db_hooks(flask_app: Flask) -> None:
    @flask_app.before_request
    def open_connection():
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

    @flask_app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        body = {"error": {"code": "internal_error", "message": "internal error", "details": None}}
        return jsonify(body), 500
