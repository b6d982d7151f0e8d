"""Errors the core raises for a client's mistake; the web layer renders them as
``{"error": {"code", "message", "details"}}`` with their status."""


class BrisaError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, details=None):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(BrisaError):
    status, code = 400, "bad_request"


class Unauthorized(BrisaError):
    status, code = 401, "unauthorized"


class Forbidden(BrisaError):
    status, code = 403, "forbidden"


class NotFound(BrisaError):
    status, code = 404, "not_found"


class Conflict(BrisaError):
    status, code = 409, "conflict"


class UnsupportedMediaType(BrisaError):
    status, code = 415, "unsupported_media_type"


class Invalid(BrisaError):
    """422: ``details`` lists every problem as ``{"field", "message"}``."""

    status, code = 422, "invalid"

    def __init__(self, errors: list[dict], message: str | None = None):
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        super().__init__(message or f"{len(errors)} problem(s): {summary}", errors)
        self.errors = errors
