"""The runtimes beside ``python`` (``http``, ``sql``, ``shell``), their pure half: templates
and the spec checks that deploy runs. The sandbox's runtimes (app/sandbox/runtimes.py) run the
specs; a template naming a missing value raises ``TemplateError``, which fails the try with
its message."""

import json
import re
import shlex

from app.domain import strict_json

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # an http spec's methods
ROOTS = ("conf", "args", "upstream", "context", "secrets")  # what a template may start with
FIELDS = {  # each runtime's spec fields
    "http": {"method", "url", "headers", "body", "connection", "timeout"},
    "sql": {"connection", "query", "params"},
    "shell": {"command", "shell"},
}
# A template, {{ path }}, and the dotted path it holds: the syntax of the runtimes' specs.
TEMPLATE = re.compile(r"\{\{([^{}]*)\}\}")
TEMPLATE_PATH = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*")


class TemplateError(Exception):
    """A template names a value the event does not have; the message says which."""


# Templates ------------------------------------------------------------------------------


def render(value, scope: dict):
    """``value`` with its string leaves rendered. A string that is one whole template keeps
    the type of what it names (``"{{ conf.items }}"`` -> a list); otherwise values are
    interpolated as text. Raises TemplateError when a path is missing."""
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


_INDEX = re.compile("[0-9]{1,18}")  # ASCII digits only: str.isdigit accepts "²", int() does not


def _step(value, segments: list, i: int, expression: str):
    if isinstance(value, dict):
        for j in range(i + 1, len(segments) + 1):
            key = ".".join(segments[i:j])
            if key in value:
                return value[key], j
    elif (
        isinstance(value, list) and _INDEX.fullmatch(segments[i]) and int(segments[i]) < len(value)
    ):
        return value[int(segments[i])], i + 1
    where = ".".join(segments[:i])
    raise TemplateError(f"template {{{{ {expression.strip()} }}}}: {where} has no {segments[i]!r}")


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
        spec = strict_json.loads(source)
    except ValueError as exc:
        return [f"must be a JSON object for the {runtime} runtime; not valid JSON: {exc}"]
    if not isinstance(spec, dict):
        return [f"must be a JSON object for the {runtime} runtime"]
    unknown = [f"{key}: unknown field" for key in sorted(set(spec) - FIELDS[runtime])]
    return unknown + CHECKS[runtime](spec, secrets)


MAX_HTTP_TIMEOUT_S = 24 * 3600  # a function's own timeout is at most a day too
_URL_STARTS = ("http://", "https://", "{{")  # a URL of its own, or a template making one


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
    elif connection is None and isinstance(url, str) and not url.startswith(_URL_STARTS):
        problems.append("url: must start with http:// or https:// (or name a connection)")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append("headers: must be an object of string values")
    timeout = spec.get("timeout")
    if timeout is not None and not (_is_number(timeout) and 0 < timeout <= MAX_HTTP_TIMEOUT_S):
        problems.append(
            f"timeout: must be a number of seconds above 0, at most {MAX_HTTP_TIMEOUT_S}"
        )
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
