"""The runtimes beside ``python``: ``http``, ``sql`` and ``shell``. A function of one of these
is a JSON spec (its ``source``), not code.

Two halves: pure helpers (templates, spec validation) that app/engine/functions.py uses at deploy
time, and ``run(job)``, called only in the sandbox child (app/sandbox/child.py), so the
timeout, memory limit and scrubbed environment of a try apply to these runtimes too.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime, time
from decimal import Decimal

from app.sandbox.child import Failed

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ROOTS = ("conf", "args", "upstream", "context", "secrets")
FIELDS = {
    "http": {"method", "url", "headers", "body", "connection", "timeout"},
    "sql": {"connection", "query", "params"},
    "shell": {"command", "shell"},
}
TEMPLATE = re.compile(r"\{\{([^{}]*)\}\}")
TEMPLATE_PATH = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*")
ERROR_BODY_CHARS = 200
URL_SAFE = "/:?#[]@!$&'()*+,;=%~"  # left as they are when a rendered URL is made valid
MAX_ENV_EVENT_BYTES = 120 * 1024  # Linux refuses one environment string over 128 KiB


# Templates ------------------------------------------------------------------------------


def render(value, scope: dict):
    """``value`` with its string leaves rendered. A string that is one whole template keeps
    the type of what it names (``"{{ conf.items }}"`` -> a list); otherwise values are
    interpolated as text. Raises Failed when a path is missing."""
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    if not isinstance(value, str):
        return value
    whole = TEMPLATE.fullmatch(value)
    if whole:
        return lookup(whole.group(1), scope)
    return interpolate(value, scope)


def interpolate(text: str, scope: dict) -> str:
    """``text`` with each template replaced by its value as text (JSON for non-strings)."""
    return TEMPLATE.sub(lambda match: _as_text(lookup(match.group(1), scope)), text)


def _as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def lookup(expression: str, scope: dict):
    """The value at a dotted path (``upstream.extract.rows.0``). Keys may hold dots (task ids
    do): at each object the shortest run of segments that is a key is taken."""
    segments = expression.strip().split(".")
    value, i = scope, 0
    while i < len(segments):
        value, i = _step(value, segments, i, expression)
    return value


def _step(value, segments: list, i: int, expression: str):
    if isinstance(value, dict):
        for j in range(i + 1, len(segments) + 1):
            key = ".".join(segments[i:j])
            if key in value:
                return value[key], j
    elif isinstance(value, list) and segments[i].isdigit() and int(segments[i]) < len(value):
        return value[int(segments[i])], i + 1
    where = ".".join(segments[:i])
    raise Failed(f"template {{{{ {expression.strip()} }}}}: {where} has no {segments[i]!r}")


def template_problems(value, where: str, secrets: list) -> list[str]:
    """Deploy-time check of every template in ``value``'s string leaves."""
    problems = []
    for text in _strings(value):
        for match in TEMPLATE.finditer(text):
            problems += _expression_problems(match.group(1).strip(), where, secrets)
    return problems


def _expression_problems(expression: str, where: str, secrets: list) -> list[str]:
    shown = f"{{{{ {expression} }}}}"
    if not TEMPLATE_PATH.fullmatch(expression):
        return [f"{where}: {shown} is not a dotted path such as {{{{ conf.name }}}}"]
    root, _, rest = expression.partition(".")
    if root not in ROOTS:
        return [f"{where}: {shown} must start with one of: {', '.join(ROOTS)}"]
    if root == "secrets" and not rest:
        return [f"{where}: {shown} must name a secret: {{{{ secrets.name }}}}"]
    if root == "secrets" and rest not in secrets:
        return [f"{where}: {shown} names a secret the function does not list in its secrets"]
    return []


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


# Deploy-time validation -----------------------------------------------------------------


def spec_problems(runtime: str, source: str, secrets: list) -> list[str]:
    """Every problem with a function's JSON spec, as messages (empty: valid). Pure."""
    try:
        spec = json.loads(source)
    except ValueError as exc:
        return [f"must be a JSON object for the {runtime} runtime; not valid JSON: {exc}"]
    if not isinstance(spec, dict):
        return [f"must be a JSON object for the {runtime} runtime"]
    unknown = [f"{key}: unknown field" for key in sorted(set(spec) - FIELDS[runtime])]
    return unknown + CHECKS[runtime](spec, secrets)


def _http_problems(spec: dict, secrets: list) -> list[str]:
    problems = []
    method, url, connection = spec.get("method", "GET"), spec.get("url"), spec.get("connection")
    if not isinstance(method, str) or method.upper() not in METHODS:
        problems.append(f"method: must be one of {', '.join(METHODS)}")
    if connection is not None:
        problems += _connection_problems(connection, secrets)
    if url is None and connection is None:
        problems.append("url: required (an http(s) URL, or a path joined to a connection)")
    elif url is not None and not isinstance(url, str):
        problems.append("url: must be a string")
    elif connection is None and not url.startswith(("http://", "https://", "{{")):
        problems.append("url: must start with http:// or https:// (or name a connection)")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append("headers: must be an object of string values")
    timeout = spec.get("timeout")
    if timeout is not None and (not _is_number(timeout) or timeout <= 0):
        problems.append("timeout: must be a number of seconds above 0")
    for field in ("url", "headers", "body"):
        problems += template_problems(spec.get(field), field, secrets)
    return problems


def _sql_problems(spec: dict, secrets: list) -> list[str]:
    problems = _connection_problems(spec.get("connection"), secrets)
    query = spec.get("query")
    if not isinstance(query, str) or not query.strip():
        problems.append("query: required, the SQL to run")
    elif TEMPLATE.search(query):
        problems.append("query: templates are not rendered in SQL; bind values as params")
    params = spec.get("params")
    if params is not None and not isinstance(params, dict | list):
        problems.append("params: must be an object (for %(name)s) or a list (for %s)")
    return problems + template_problems(params, "params", secrets)


def _shell_problems(spec: dict, secrets: list) -> list[str]:
    problems = []
    command, use_shell = spec.get("command"), spec.get("shell", True)
    if not isinstance(command, str) or not command.strip():
        problems.append("command: required, the command to run")
    elif use_shell is False:
        try:
            shlex.split(command)
        except ValueError as exc:
            problems.append(f"command: cannot be split into arguments: {exc}")
    if not isinstance(use_shell, bool):
        problems.append("shell: must be true or false")
    return problems


def _connection_problems(connection, secrets: list) -> list[str]:
    if not isinstance(connection, str) or not connection:
        return ["connection: required, the name of a secret holding the connection's URL"]
    if connection not in secrets:
        return [f"connection: {connection!r} must be listed in the function's secrets"]
    return []


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CHECKS = {"http": _http_problems, "sql": _sql_problems, "shell": _shell_problems}


# Running (in the sandbox child) ---------------------------------------------------------


def run(job: dict):
    """The result of one try of a non-python function; raises Failed (or anything) if not."""
    spec = json.loads(job["source"])
    context = job.get("context") or {}
    scope = {**job["event"], "context": context, "secrets": job.get("secrets") or {}}
    return RUNNERS[job["runtime"]](spec, scope, job)


def _secret(name: str, scope: dict) -> str:
    try:
        return scope["secrets"][name]
    except KeyError:
        raise Failed(f"secret {name!r} is not available to this function") from None


def run_http(spec: dict, scope: dict, job: dict):
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


def run_sql(spec: dict, scope: dict, job: dict):
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
        raise Failed(f"connection {name!r}: {_first_line(exc)}") from None
    try:
        with connection, connection.cursor() as cursor:  # commits, or rolls back on error
            cursor.execute(spec["query"], params or None)
            return _sql_result(cursor)
    except psycopg2.Error as exc:
        raise Failed(f"{type(exc).__name__}: {_first_line(exc)}") from None
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
    """A database value as JSON: dates and times as ISO text, decimals as floats, bytes as
    hex, anything else unknown (UUID, interval, inet) as its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Decimal):
        return float(value)
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


def run_shell(spec: dict, scope: dict, job: dict):
    """stdout (bounded by the result cap) is the result; stderr is the child's fd 2, so it
    streams to the task log as it is written."""
    event = json.dumps(job["event"])
    command = spec["command"]
    argv = ["/bin/sh", "-c", command] if spec.get("shell", True) else shlex.split(command)
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_shell_env(event, scope)
        )
    except OSError as exc:
        raise Failed(f"the command could not start: {exc}") from None
    threading.Thread(target=_feed, args=(process.stdin, event.encode()), daemon=True).start()
    cap = job["result_cap_bytes"]
    output = process.stdout.read(cap + 1)
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
    try:
        return json.loads(text)
    except ValueError:
        return text


RUNNERS = {"http": run_http, "sql": run_sql, "shell": run_shell}
