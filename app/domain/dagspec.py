"""Parse and validate DAG specs: JSON-like dicts describing a DAG and its tasks.

`validate_dag_spec` reports every problem at once as ``{"field", "message"}`` dicts, so an
API can show them all; `parse_dag_spec` turns a valid spec into a frozen `DagSpec`.
"""

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from app.domain.trigger_rules import TRIGGER_RULES

PRESETS = {  # Airflow's schedule presets, as cron expressions (@once: no schedule)
    "@once": None,
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

# A dag_id or task_id: the API's contract (openapi.json), and a path segment of its URLs.
_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_ID_RULE = "1-100 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
# Task settings that default_args may supply.
_INHERITED_KEYS = ("retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout", "pool")


class SpecInvalid(Exception):
    """A spec failed validation; `errors` lists every problem as {"field", "message"}."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__(self.errors)

    def __str__(self):
        problems = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
        return f"invalid DAG spec ({len(self.errors)} problem(s)): {problems}"


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    function: str
    version: int | None = None
    upstream: tuple[str, ...] = ()
    args: dict = field(default_factory=dict)
    trigger_rule: str = "all_success"
    retries: int = 0
    retry_delay: float = 10.0
    retry_backoff: bool = False
    max_retry_delay: float = 3600.0
    timeout: float | None = None  # None: the function's own timeout
    pool: str | None = None  # a named pool whose slots bound how many such tasks run at once


@dataclass(frozen=True)
class DagSpec:
    dag_id: str
    description: str = ""
    schedule: str | None = None
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    catchup: bool = False
    max_active_runs: int = 16
    max_active_tasks: int = 16
    tags: tuple[str, ...] = ()
    default_args: dict = field(default_factory=dict)
    tasks: tuple[TaskSpec, ...] = ()
    dagrun_timeout: float | None = None  # seconds a run may take before it is failed
    on_success: str | None = None  # a function called with the run's summary
    on_failure: str | None = None

    def task(self, task_id):
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise KeyError(task_id)

    def downstream(self, task_id):
        return tuple(t.task_id for t in self.tasks if task_id in t.upstream)

    def roots(self):
        return tuple(t.task_id for t in self.tasks if not t.upstream)

    def topological_order(self):
        """Upstreams before downstreams; among tasks ready together, spec order wins."""
        order: dict[str, None] = {}  # an ordered set
        remaining = list(self.tasks)
        while remaining:
            task = next(t for t in remaining if order.keys() >= set(t.upstream))
            remaining.remove(task)
            order[task.task_id] = None
        return tuple(order)

    def function_names(self):
        callbacks = {self.on_success, self.on_failure} - {None}
        return {t.function for t in self.tasks} | callbacks

    def to_dict(self):
        data = asdict(self)
        data.update(
            start_date=_to_iso(self.start_date),
            end_date=_to_iso(self.end_date),
            tags=list(self.tags),
            tasks=[{**asdict(t), "upstream": list(t.upstream)} for t in self.tasks],
        )
        return data


_DAG_KEYS = frozenset(f.name for f in fields(DagSpec))
_TASK_KEYS = frozenset(f.name for f in fields(TaskSpec))


class _Errors(list):
    def add(self, path, message):
        self.append({"field": path, "message": message})


def _show(value):
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    """A finite JSON number. An integer too large for a float (10**400) is not one: comparing
    it is fine, but the float it is stored as would overflow."""
    if _is_int(value):
        return abs(value) <= 2**53
    return isinstance(value, float) and math.isfinite(value)


def _check(predicate, requirement):
    """A value check: returns what the value must be, or None when `predicate` accepts it."""
    return lambda value: None if predicate(value) else requirement


def _or_null(check):
    return lambda value: None if value is None else check(value)


def _int_from(low: int, high: int):
    return _check(
        lambda v: _is_int(v) and low <= v <= high, f"must be an integer from {low} to {high}"
    )


# Every number has an upper bound, so no arithmetic on it overflows and no column truncates it.
MAX_RETRIES = 1000  # tries after the first; Airflow has no cap, AWS Step Functions 99999999
MAX_ACTIVE = 100_000  # max_active_runs and max_active_tasks
MAX_VERSION = 2**31 - 1  # a function version number: a 32-bit integer column
# Seconds are stored as floats: at least a millisecond, at most a year.
MIN_SECONDS, MAX_SECONDS = 0.001, 366 * 24 * 3600
_positive_seconds = _check(
    lambda v: _is_number(v) and MIN_SECONDS <= v <= MAX_SECONDS,
    f"must be a number of seconds from {MIN_SECONDS} to {MAX_SECONDS}",
)
_boolean = _check(lambda v: isinstance(v, bool), "must be true or false")
_string = _check(lambda v: isinstance(v, str), "must be a string")
_object = _check(lambda v: isinstance(v, dict), "must be an object")
_string_list = _check(
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "must be a list of strings",
)
_trigger_rule = _check(lambda v: v in TRIGGER_RULES, f"must be one of {', '.join(TRIGGER_RULES)}")


def _schedule(value):
    """Cron expressions must have exactly 5 fields: croniter also accepts seconds and years."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "must be a cron expression, a preset such as '@daily', or null"
    if value.startswith("@"):
        return None if value in PRESETS else f"must be one of the presets {', '.join(PRESETS)}"
    parts = value.split()
    if len(parts) in (6, 7):
        return "must have 5 fields (minute hour day month weekday); seconds/years are not supported"
    if len(parts) != 5 or not croniter.is_valid(value):
        return "must be a valid cron expression such as '0 3 * * *'"
    return None


def _timezone(value):
    """ZoneInfo raises KeyError for unknown zones, ValueError for paths such as "../x" and
    for files in the tz database that are not zones, OSError for its directories."""
    if isinstance(value, str):
        try:
            ZoneInfo(value)
            return None
        except (KeyError, ValueError, OSError):
            pass
    return "must be an IANA time zone name such as 'Europe/Lisbon'"


_INHERITED_CHECKS = {
    "retries": _int_from(0, MAX_RETRIES),
    "retry_delay": _positive_seconds,
    "retry_backoff": _boolean,
    "max_retry_delay": _positive_seconds,
    "timeout": _or_null(_positive_seconds),
    "pool": _or_null(
        _check(lambda v: isinstance(v, str) and bool(_ID.fullmatch(v)), "must be a pool name")
    ),
}
_DAG_CHECKS = {
    "description": _string,
    "schedule": _schedule,
    "timezone": _timezone,
    "catchup": _boolean,
    "max_active_runs": _int_from(1, MAX_ACTIVE),
    "max_active_tasks": _int_from(1, MAX_ACTIVE),
    "tags": _string_list,
    "default_args": _object,
    "dagrun_timeout": _or_null(_positive_seconds),
}
_TASK_CHECKS = {
    "version": _or_null(_int_from(1, MAX_VERSION)),
    "args": _object,
    "trigger_rule": _trigger_rule,
    **_INHERITED_CHECKS,
}


def _check_values(obj, checks, prefix, errors):
    for key, check in checks.items():
        if key in obj and (problem := check(obj[key])):
            errors.add(prefix + key, f"{key} {problem}, got {_show(obj[key])}")


def _check_keys(obj, allowed, prefix, errors):
    for key in obj:
        if key not in allowed:
            errors.add(f"{prefix}{key}", f"unknown key '{key}'")


def _check_id(value, path, name, errors):
    if not isinstance(value, str):
        errors.add(path, f"{name} must be a string, got {_show(value)}")
    elif not _ID.fullmatch(value):
        errors.add(path, f"{name} '{value}' is invalid: use {_ID_RULE}")


def _check_dag_id(data, url_dag_id, errors):
    value = data.get("dag_id")
    if value is None and url_dag_id is None:
        errors.add("dag_id", "dag_id is required")
    elif value is not None and url_dag_id is not None and value != url_dag_id:
        errors.add("dag_id", f"dag_id {_show(value)} does not match '{url_dag_id}' in the URL")
    else:
        _check_id(url_dag_id if value is None else value, "dag_id", "dag_id", errors)


FIRST_YEAR, LAST_YEAR = 1970, 2999  # schedules are computed around these dates


def _parse_datetime(value, tz):
    """An aware UTC datetime, or None if `value` is not ISO-8601 in years 1970-2999; naive
    means local to `tz`."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        parsed = parsed.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if FIRST_YEAR <= parsed.year <= LAST_YEAR else None


def _zone(data):
    name = data.get("timezone", "UTC")
    return UTC if _timezone(name) else ZoneInfo(name)


def _check_dates(data, errors):
    parsed, zone = {}, _zone(data)
    for key in ("start_date", "end_date"):
        value = data.get(key)
        if value is not None:
            parsed[key] = _parse_datetime(value, zone)
            if parsed[key] is None:
                message = f"{key} must be an ISO-8601 date or datetime in {FIRST_YEAR}-{LAST_YEAR}"
                errors.add(key, f"{message}, got {_show(value)}")
    start, end = parsed.get("start_date"), parsed.get("end_date")
    if start and end and end < start:
        errors.add("end_date", "end_date must not be before start_date")


def _check_upstream(upstream, path, task_id, task_ids, errors):
    if _string_list(upstream):
        errors.add(path, f"upstream must be a list of task ids, got {_show(upstream)}")
        return
    for j, name in enumerate(upstream):
        if name == task_id:
            errors.add(
                f"{path}[{j}]",
                f"task '{name}' cannot be its own upstream (cycle: {name} -> {name})",
            )
        elif name not in task_ids:
            errors.add(f"{path}[{j}]", f"unknown upstream task '{name}'")
        elif name in upstream[:j]:
            errors.add(f"{path}[{j}]", f"duplicate upstream task '{name}'")


def _check_function(function, path, function_names, errors):
    if function is None:
        errors.add(path, "function is required")
    elif not isinstance(function, str):
        errors.add(path, f"function must be a string, got {_show(function)}")
    elif function not in function_names:
        errors.add(path, f"unknown function '{function}'")


def _check_task(task, path, task_ids, function_names, errors):
    if not isinstance(task, dict):
        errors.add(path, f"each task must be an object, got {_show(task)}")
        return
    prefix = path + "."
    _check_keys(task, _TASK_KEYS, prefix, errors)
    if "task_id" not in task:
        errors.add(prefix + "task_id", "task_id is required")
    else:
        _check_id(task["task_id"], prefix + "task_id", "task_id", errors)
    _check_function(task.get("function"), prefix + "function", function_names, errors)
    if "upstream" in task:
        _check_upstream(
            task["upstream"], prefix + "upstream", task.get("task_id"), task_ids, errors
        )
    _check_values(task, _TASK_CHECKS, prefix, errors)


def _check_duplicate_ids(tasks, errors):
    first: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if _has_id(task) and first.setdefault(task_id := task["task_id"], i) != i:
            errors.add(
                f"tasks[{i}].task_id",
                f"duplicate task_id '{task_id}' (see tasks[{first[task_id]}])",
            )


def _has_id(task):
    return isinstance(task, dict) and isinstance(task.get("task_id"), str)


def _string_items(value):
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _downstream_graph(tasks):
    """task_id -> downstream task_ids over tasks with an id; a duplicated id's first task wins."""
    first: dict[str, dict] = {}
    for task in filter(_has_id, tasks):
        first.setdefault(task["task_id"], task)
    graph: dict[str, list[str]] = {task_id: [] for task_id in first}
    for task_id, task in first.items():
        for name in _string_items(task.get("upstream")):
            # Self-references are reported on the upstream entry itself.
            if name != task_id and name in graph and task_id not in graph[name]:
                graph[name].append(task_id)
    return graph


def _find_cycles(graph):
    """Closed paths such as [a, b, a], found by an iterative depth-first search.

    Each back edge closes one cycle, so no cycle is reported twice and a cyclic graph always
    yields at least one; cycles sharing a back edge with a reported one are not listed.
    """
    state, cycles = {}, []  # state: "open" while on the DFS path, then "done"
    for root in graph:
        if root in state:
            continue
        path, children = [root], [iter(graph[root])]
        state[root] = "open"
        while path:
            child = next(children[-1], None)
            if child is None:
                state[path.pop()] = "done"
                children.pop()
            elif state.get(child) == "open":
                cycles.append([*path[path.index(child) :], child])
            elif child not in state:
                state[child] = "open"
                path.append(child)
                children.append(iter(graph[child]))
    return cycles


def _check_tasks(data, function_names, errors):
    tasks = data.get("tasks")
    if tasks is None:
        errors.add("tasks", "tasks is required")
    elif not isinstance(tasks, list):
        errors.add("tasks", f"tasks must be a list of task objects, got {_show(tasks)}")
    elif not tasks:
        errors.add("tasks", "tasks must contain at least one task")
    else:
        task_ids = {t["task_id"] for t in tasks if _has_id(t)}
        for i, task in enumerate(tasks):
            _check_task(task, f"tasks[{i}]", task_ids, function_names, errors)
        _check_duplicate_ids(tasks, errors)
        for cycle in _find_cycles(_downstream_graph(tasks)):
            errors.add("tasks", "cycle: " + " -> ".join(cycle))


def validate_dag_spec(data, function_names, dag_id=None):
    """Every problem in `data` as {"field", "message"}; an empty list means it is valid.

    `function_names` are the deployed functions tasks may call; `dag_id` is the id from the
    URL, used when the body has none and which the body's must otherwise match.
    """
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add("spec", f"the DAG spec must be a JSON object, got {_show(data)}")
        return list(errors)
    _check_keys(data, _DAG_KEYS, "", errors)
    _check_dag_id(data, dag_id, errors)
    _check_values(data, _DAG_CHECKS, "", errors)
    _check_dates(data, errors)
    if isinstance(data.get("default_args"), dict):
        _check_keys(data["default_args"], _INHERITED_KEYS, "default_args.", errors)
        _check_values(data["default_args"], _INHERITED_CHECKS, "default_args.", errors)
    _check_tasks(data, function_names, errors)
    for key in ("on_success", "on_failure"):
        if data.get(key) is not None:
            _check_function(data[key], key, function_names, errors)
    return list(errors)


def parse_dag_spec(data, function_names, dag_id=None):
    """The DagSpec for `data`; raises SpecInvalid listing every problem if it is not valid."""
    errors = validate_dag_spec(data, function_names, dag_id)
    if errors:
        raise SpecInvalid(errors)
    default_args = dict(data.get("default_args", {}))
    simple = (
        "description",
        "timezone",
        "catchup",
        "max_active_runs",
        "max_active_tasks",
        "on_success",
        "on_failure",
    )
    return DagSpec(
        dag_id=data.get("dag_id") or dag_id,
        schedule=_normalise_schedule(data.get("schedule")),
        start_date=_parse_datetime(data.get("start_date"), _zone(data)),
        end_date=_parse_datetime(data.get("end_date"), _zone(data)),
        tags=tuple(data.get("tags", ())),
        default_args=default_args,
        tasks=tuple(_task_spec(task, default_args) for task in data["tasks"]),
        dagrun_timeout=_float_or_none(data.get("dagrun_timeout")),
        **{key: data[key] for key in simple if key in data},
    )


def _task_spec(task, default_args):
    """A task's own retry settings win over default_args, which win over TaskSpec defaults."""
    settings = {**default_args, **{k: task[k] for k in _INHERITED_KEYS if k in task}}
    for key in ("retry_delay", "max_retry_delay", "timeout"):
        if settings.get(key) is not None:
            settings[key] = float(settings[key])
    return TaskSpec(
        task_id=task["task_id"],
        function=task["function"],
        version=task.get("version"),
        upstream=tuple(task.get("upstream", ())),
        args=dict(task.get("args", {})),
        trigger_rule=task.get("trigger_rule", "all_success"),
        **settings,
    )


def _float_or_none(value):
    return None if value is None else float(value)


def _normalise_schedule(schedule):
    if schedule is None or schedule in PRESETS:
        return schedule
    return " ".join(schedule.split())


def _to_iso(value):
    return None if value is None else value.isoformat().replace("+00:00", "Z")
