"""The runtimes beside ``python``: ``http``, ``sql`` and ``shell``. A function of one of these
is a JSON spec (its ``source``), not code.

``run(job)`` is called only in the sandbox child (app/sandbox/child.py), so the timeout,
memory limit and scrubbed environment of a try apply to these runtimes too. Templates and the
deploy-time spec checks are pure: app/domain/runtime_specs.py.
"""

import contextlib
import json
import math
import os
import shlex
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime, time
from decimal import Decimal

from app.domain import redact, strict_json
from app.domain.runtime_specs import interpolate, render
from app.sandbox.job import Failed, Job

ERROR_BODY_CHARS = 200  # of an http error's body, quoted in the try's one-line error
URL_SAFE = "/:?#[]@!$&'()*+,;=%~"  # left as they are when a rendered URL is made valid
MAX_ENV_EVENT_BYTES = 120 * 1024  # Linux refuses one environment string over 128 KiB


# Running (in the sandbox child) ---------------------------------------------------------


def run(job: Job):
    """The result of one try of a non-python function; raises Failed (or anything) if not."""
    spec = json.loads(job.source)
    scope = {**job.event, "context": job.context, "secrets": job.secrets}
    return RUNNERS[job.runtime](spec, scope, job)


def _secret(name: str, scope: dict) -> str:
    try:
        return scope["secrets"][name]
    except KeyError:
        raise Failed(f"secret {name!r} is not available to this function") from None


def run_http(spec: dict, scope: dict, job: Job):
    method = spec.get("method", "GET").upper()
    url = interpolate(spec.get("url", ""), scope)
    if spec.get("connection"):
        url = _join(_secret(spec["connection"], scope), url)
    url = urllib.parse.quote(url, safe=URL_SAFE)  # spaces, non-ASCII: percent-encoded
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise Failed(f"the URL must be http:// or https://, not {shown}")
    headers = {key: interpolate(value, scope) for key, value in spec.get("headers", {}).items()}
    data = _request_body(spec, scope, headers)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    via = f" (connection {spec['connection']})" if spec.get("connection") else ""
    print(f"[brisa] http: {method} {spec.get('url', '')}{via}")  # unrendered: no secrets
    status, body = _send(request, spec.get("timeout"))
    text = body.decode("utf-8", errors="replace")
    print(f"[brisa] http: HTTP {status}, {len(body)} bytes")
    if not 200 <= status < 300:
        raise Failed(f"HTTP {status}: {text[:ERROR_BODY_CHARS]}")
    return _json_or_text(text) if text else None


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path.lstrip('/')}" if path else base


def _request_body(spec: dict, scope: dict, headers: dict) -> bytes | None:
    """A string body is sent as it is; anything else as JSON (Content-Type set if absent)."""
    if "body" not in spec:
        return None
    body = render(spec["body"], scope)
    if isinstance(body, str):
        return body.encode()
    if not any(key.lower() == "content-type" for key in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(body).encode()


def _send(request, timeout) -> tuple[int, bytes]:
    """(status, body). Only http(s) handlers: a redirect cannot lead to file:// or ftp://."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()
    except urllib.error.URLError as exc:
        raise Failed(f"the request failed: {exc.reason}") from None
    except OSError as exc:  # a timeout or reset while reading
        raise Failed(f"the request failed: {exc}") from None
    except ValueError as exc:  # not its message: it would show a value, maybe a secret
        name = type(exc).__name__
        raise Failed(f"the request is invalid ({name}): check the URL and header values") from None


def run_sql(spec: dict, scope: dict, job: Job):
    import psycopg2  # lazily: the fork server stays light, and only sql tries pay for it
    import psycopg2.extras

    name = spec["connection"]
    url = _secret(name, scope)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql"):
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise Failed(f"connection {name!r}: only postgresql:// URLs are supported, not {shown}")
    params = _bindable(render(spec.get("params"), scope), psycopg2.extras.Json)
    try:
        connection = psycopg2.connect(url)
    except psycopg2.Error as exc:
        raise Failed(
            f"connection {name!r}: {redact.connection_details(_first_line(exc))}"
        ) from None
    try:
        with connection, connection.cursor() as cursor:  # commits, or rolls back on error
            cursor.execute(spec["query"], params or None)
            return _sql_result(cursor)
    except psycopg2.Error as exc:
        error = redact.connection_details(_first_line(exc))
        raise Failed(f"{type(exc).__name__}: {error}") from None
    finally:
        connection.close()


def _bindable(params, json_adapter):
    """Objects among the params are bound as JSON (psycopg2 adapts lists to arrays)."""

    def adapt(value):
        return json_adapter(value) if isinstance(value, dict) else value

    if isinstance(params, dict):
        return {key: adapt(value) for key, value in params.items()}
    if isinstance(params, list):
        return [adapt(value) for value in params]
    return params


def _sql_result(cursor):
    if cursor.description is None:
        print(f"[brisa] sql: {cursor.rowcount} rows affected")
        return {"rowcount": cursor.rowcount}
    columns = [column.name for column in cursor.description]
    rows = [dict(zip(columns, map(jsonable, row), strict=True)) for row in cursor.fetchall()]
    print(f"[brisa] sql: {len(rows)} rows")
    return rows


def jsonable(value):
    """A database value as strict JSON: dates and times as ISO text, decimals as floats, NaN
    and infinities as Postgres writes them ("NaN", "Infinity", "-Infinity"), bytes as hex,
    anything else unknown (UUID, interval, inet) as its text."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def run_shell(spec: dict, scope: dict, job: Job):
    """stdout (bounded by the result cap) is the result; stderr is the child's fd 2, so it
    streams to the task log as it is written."""
    event = json.dumps(job.event)
    command = spec["command"]
    argv = ["/bin/sh", "-c", command] if spec.get("shell", True) else shlex.split(command)
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_shell_env(event, scope)
        )
    except OSError as exc:
        raise Failed(f"the command could not start: {exc}") from None
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:  # never: both are asked for as pipes above
        raise Failed("the command's stdin and stdout are not pipes")
    threading.Thread(target=_feed, args=(stdin, event.encode()), daemon=True).start()
    cap = job.result_cap_bytes
    output = stdout.read(cap + 1)
    if len(output) > cap:
        process.kill()
        process.wait()
        raise Failed(f"stdout is over the result cap of {cap} bytes")
    code = process.wait()
    if code:
        raise Failed(f"exit code {code}" if code > 0 else f"killed by {signal.Signals(-code).name}")
    text = output.decode("utf-8", errors="replace")
    return _json_or_text(text[:-1] if text.endswith("\n") else text)


def _shell_env(event: str, scope: dict) -> dict:
    context = scope["context"]
    env = {
        **os.environ,  # already confined by the sandbox: PATH, HOME, ... and the function's env
        "BRISA_RUN_ID": str(context.get("run_id", "")),
        "BRISA_TASK_ID": str(context.get("task_id", "")),
        "BRISA_TRY_NUMBER": str(context.get("try_number", "")),
    }
    if len(event.encode()) <= MAX_ENV_EVENT_BYTES:
        env["BRISA_EVENT"] = event
    else:
        print(f"[brisa] shell: the event is over {MAX_ENV_EVENT_BYTES} bytes: stdin only")
    return env


def _feed(pipe, data: bytes) -> None:
    """Write the event to the command's stdin; a command that does not read it is fine."""
    with contextlib.suppress(OSError):
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


def _json_or_text(text: str):
    """Strict JSON (NaN and Infinity are not), else the text as it came."""
    try:
        return strict_json.loads(text)
    except ValueError:
        return text


RUNNERS = {"http": run_http, "sql": run_sql, "shell": run_shell}
