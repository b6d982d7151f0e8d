"""A small HTTP client for Brisa's API (standard library only), for the CLI.

Every failure becomes an `ApiError` (a `CliError`) whose one line says what to do: the
address is not an http(s) URL, nothing answers there, what answers is not Brisa's API (an
HTML page, a broken answer, JSON without Brisa's error shape), the token is missing or
refused, the server failed, or the API's own error with its details.
"""

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from app.cli.errors import CliError, UsageError

DEFAULT_PORT = 8000  # app/config.py's default PORT, where `make run` listens
API_PREFIX = "/api/v1"
ROOT_HINT = "BRISA_URL is Brisa's root address, like http://127.0.0.1:8000"
# What Flask (werkzeug) says of a path it has no route for, or a method the route lacks.
NO_ROUTE = ("The requested URL was not found", "The method is not allowed")


def default_url() -> str:
    return os.environ.get("BRISA_URL") or f"http://127.0.0.1:{os.environ.get('PORT', DEFAULT_PORT)}"


def server_root(url: str, source: str = "BRISA_URL") -> str:
    """``url`` without a trailing ``/`` or ``/api/v1`` (the API's own prefix, a common paste);
    UsageError naming ``source`` unless it is an http(s) address with a host and a port that
    is a number."""
    root = url.strip().rstrip("/").removesuffix(API_PREFIX).rstrip("/")
    parts = urllib.parse.urlsplit(root)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source}: {url!r} is not an http:// or https:// address: {ROOT_HINT}")
    return root


class ApiError(CliError):
    """A failed call: ``message`` to show, ``status`` (None: no HTTP answer), ``details`` as
    the API lists them."""

    def __init__(self, message: str, status: int | None = None, details=None):
        super().__init__(message, details)
        self.status = status


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 60, source="BRISA_URL"):
        self.url = server_root(url, source)
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
                status, raw, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            raise self._refused(exc) from None
        except TimeoutError:
            raise ApiError(f"Brisa at {self.url} did not answer within {self.timeout:g}s") from None
        except OSError as exc:  # URLError is one: refused, unknown host, reset
            raise ApiError(self._unreachable(exc)) from None
        except http.client.HTTPException as exc:  # not HTTP: another protocol on that port
            raise ApiError(
                f"{self.url} did not answer in HTTP ({type(exc).__name__}): "
                f"is it Brisa's address? {ROOT_HINT}"
            ) from None
        try:
            return status, _decode(raw)
        except ValueError:
            shown = kind.get_content_type()
            raise ApiError(
                f"{self.url} answered {method} {API_PREFIX}{path} with {shown}, not Brisa's "
                f"JSON: {ROOT_HINT}"
            ) from None

    def _address(self, path: str, query) -> str:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.url}{API_PREFIX}{urllib.parse.quote(path)}{suffix}"

    def _headers(self, body) -> dict:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _unreachable(self, exc: OSError) -> str:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return f"Brisa at {self.url} did not answer within {self.timeout:g}s"
        reason = getattr(reason, "strerror", None) or reason
        return f"cannot reach Brisa at {self.url}: {reason} (is it running? `make run` starts one)"

    def _refused(self, exc: urllib.error.HTTPError) -> ApiError:
        """The API's error, its message worded for the CLI; an answer without Brisa's error
        shape says the address (or a proxy in front of it) is wrong."""
        try:
            error = _decode(exc.read())["error"]
            message, details = str(error["message"]), error.get("details")
        except (ValueError, TypeError, KeyError, OSError, http.client.HTTPException):
            return ApiError(self._foreign(exc), exc.code)
        return ApiError(self._worded(exc.code, message), exc.code, details)

    def _worded(self, status: int, message: str) -> str:
        if status == 401:
            if not self.token:
                return "no token: set BRISA_TOKEN or pass --token"
            return f"the token was refused ({message}): check BRISA_TOKEN"
        if status == 403:
            return f"the token's role is too low: {message}"
        if status >= 500:
            return f"Brisa at {self.url} failed: {message} (HTTP {status}; its web log says why)"
        if status in (404, 405) and message.startswith(NO_ROUTE):
            return f"{self.url} has no such API path (HTTP {status}): {ROOT_HINT}"
        return message

    def _foreign(self, exc: urllib.error.HTTPError) -> str:
        answer = f"HTTP {exc.code} {exc.reason}"
        if exc.code >= 500:
            return (
                f"{self.url} answered {answer}, not from Brisa's API: is Brisa (or a proxy in "
                "front of it) down?"
            )
        return f"{self.url} answered {answer}, not as Brisa's API does: {ROOT_HINT}"


def _decode(raw: bytes):
    return json.loads(raw) if raw.strip() else None
