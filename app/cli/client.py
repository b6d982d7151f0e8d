"""A small HTTP client for Brisa's API (standard library only), for the CLI.

Every failure becomes an `ApiError` whose message says what to do: the server cannot be
reached, the token is missing or refused, or the API's own error with its details.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_PORT = 8000  # app/config.py's default PORT, where `make run` listens


def default_url() -> str:
    return os.environ.get("BRISA_URL") or f"http://127.0.0.1:{os.environ.get('PORT', DEFAULT_PORT)}"


class ApiError(Exception):
    """A failed call: ``message`` to show, ``details`` as the API lists them."""

    def __init__(self, message: str, status: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 60):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str, **query):
        return self.send("GET", path, query=query)[1]

    def post(self, path: str, body=None, **query):
        return self.send("POST", path, body, query)[1]

    def put(self, path: str, body):
        return self.send("PUT", path, body)[1]

    def patch(self, path: str, body):
        return self.send("PATCH", path, body)[1]

    def send(self, method: str, path: str, body=None, query=None) -> tuple[int, object]:
        """(status, decoded JSON body or None) of a call to ``/api/v1{path}``."""
        request = urllib.request.Request(
            self._address(path, query), method=method, headers=self._headers(body)
        )
        if body is not None:
            request.data = json.dumps(body).encode()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise self._refused(exc) from None
        except OSError as exc:  # URLError is one: refused, unknown host, timed out
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach Brisa at {self.url}: {reason}") from None
        try:
            return status, _decode(raw)
        except ValueError:
            raise ApiError(f"{self.url} did not answer JSON: is it Brisa's address?") from None

    def _address(self, path: str, query) -> str:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.url}/api/v1{path}{suffix}"

    def _headers(self, body) -> dict:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _refused(self, exc: urllib.error.HTTPError) -> ApiError:
        try:
            error = _decode(exc.read())["error"]
            message, details = error["message"], error.get("details")
        except (ValueError, TypeError, KeyError):
            message, details = f"HTTP {exc.code} {exc.reason} (not a Brisa API answer)", None
        if exc.code == 401:
            missing = "no token: set BRISA_TOKEN or pass --token" if not self.token else None
            message = missing or f"the token was refused ({message}): check BRISA_TOKEN"
        elif exc.code == 403:
            message = f"the token's role is too low: {message}"
        return ApiError(message, exc.code, details)


def _decode(raw: bytes):
    return json.loads(raw) if raw.strip() else None
