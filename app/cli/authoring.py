"""DAGs written in Python: sugar over the JSON spec, which stays the one source of truth.

A DAG file imports this module, decorates handlers with ``@task`` and wires them inside a
``with DAG(...)`` block (``a >> [b, c] >> d``) or a ``@dag`` function (call-style,
``d(b(a()), c())``). `collect` runs such files, as the CLI does before deploying, and turns
them into the same function payloads and DAG specs the API takes: each task's function is
the whole file, named ``<dag_id>.<handler>``, with the decorated handler as its ``handler``.

The same file runs again in Brisa's sandbox on every try, so this module is standard
library only and cheap to import: there the ``with`` block or ``@dag`` function builds the
graph in memory (harmless), and the worker then calls the decorated handler outside any
DAG, which simply calls the function with ``(event, context)``.
"""

import ast
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from app.cli.errors import CliError
from app.domain import strict_json

TASK_OPTIONS = frozenset(
    {
        "task_id",
        "args",
        "trigger_rule",
        "retries",
        "retry_delay",
        "retry_backoff",
        "max_retry_delay",
        "timeout",
        "pool",
    }
)
FUNCTION_OPTIONS = frozenset(  # settings of the deployed function
    {"memory_mb", "secrets", "requirements", "isolation"}
)
DAG_OPTIONS = frozenset(
    {
        "description",
        "schedule",
        "timezone",
        "start_date",
        "end_date",
        "catchup",
        "max_active_runs",
        "max_active_tasks",
        "tags",
        "default_args",
        "dagrun_timeout",
        "on_success",
        "on_failure",
    }
)
MODULE = __name__  # what a DAG file imports, e.g. ``from app.cli.authoring import DAG, task``

_building: list["DAG"] = []  # the DAGs whose definitions are running, innermost last
_created: list["DAG"] | None = None  # while `collect` runs a file: the DAGs it defines


class AuthoringError(CliError):
    """A file to deploy is wrong: the message names the file and says what to fix."""


def _check_options(given: dict, allowed: frozenset, what: str) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{what} takes no option {', '.join(unknown)}; it takes {sorted(allowed)}")


class TaskFunction:
    """A decorated handler. Outside a DAG it is the handler itself; inside a DAG's
    definition, calling it adds a task whose upstream are the tasks passed in."""

    def __init__(self, function, options: dict):
        _check_options(options, TASK_OPTIONS | FUNCTION_OPTIONS, "@task")
        self.function = function
        self.options = options
        self.__name__ = function.__name__
        self.__qualname__ = function.__qualname__
        self.__doc__ = function.__doc__

    def __call__(self, *args, **kwargs):
        """In a DAG's definition, ``b(a(), n=2)`` adds task b after a, with ``{"n": 2}``
        merged into its args; anywhere else, it calls the handler."""
        if not _building:
            return self.function(*args, **kwargs)
        node = _building[-1].add(self)
        if kwargs:
            node.spec["args"] = {**node.spec.get("args", {}), **kwargs}
        for item in _flatten(args):
            node.set_upstream(item)
        return node

    def override(self, **options) -> "TaskFunction":
        """The same handler with some options changed, e.g. ``.override(task_id="b2")``."""
        return TaskFunction(self.function, {**self.options, **options})

    def node(self) -> "Task":
        """This handler's task in the DAG being defined (added on first use)."""
        if not _building:
            raise AuthoringError(
                f"{self.__name__}: use >> and << inside `with DAG(...)` or a @dag function"
            )
        return _building[-1].task_of(self)

    def __rshift__(self, other):
        return self.node() >> other

    def __lshift__(self, other):
        return self.node() << other

    def __rrshift__(self, other):  # [a, b] >> self
        return self.node().__rrshift__(other)

    def __rlshift__(self, other):
        return self.node().__rlshift__(other)


def _flatten(items) -> list:
    flat = []
    for item in items:
        flat.extend(_flatten(item) if isinstance(item, list | tuple) else [item])
    return flat


def _as_node(item) -> "Task":
    if isinstance(item, TaskFunction):
        return item.node()
    if isinstance(item, Task):
        return item
    raise TypeError(f"expected a task, got {item!r}")


class Task:
    """One task of a DAG: a node of the graph, with its spec entry."""

    def __init__(self, dag: "DAG", task_function: TaskFunction, task_id: str):
        self.dag = dag
        self.task_function = task_function
        self.task_id = task_id
        task_options = {k: v for k, v in task_function.options.items() if k in TASK_OPTIONS}
        task_options.pop("task_id", None)
        self.spec = {"task_id": task_id, "function": dag.function_name(task_function)}
        self.spec.update(task_options)
        self.upstream: list[str] = []

    def set_upstream(self, other) -> None:
        node = _as_node(other)
        if node.dag is not self.dag:
            raise AuthoringError(f"{node.task_id} and {self.task_id} are in different DAGs")
        if node.task_id not in self.upstream:
            self.upstream.append(node.task_id)

    def __rshift__(self, other):
        """``self >> other``: other runs after self; returns other, so chains read left to
        right."""
        for item in _flatten([other]):
            _as_node(item).set_upstream(self)
        return other

    def __lshift__(self, other):
        for item in _flatten([other]):
            self.set_upstream(item)
        return other

    def __rrshift__(self, other):  # [a, b] >> self
        self.__lshift__(other)
        return self

    def __rlshift__(self, other):  # [a, b] << self
        self.__rshift__(other)
        return self

    def to_spec(self) -> dict:
        return {**self.spec, **({"upstream": list(self.upstream)} if self.upstream else {})}


class DAG:
    """A DAG being defined: ``with DAG("nightly", schedule="@daily"): a >> b``."""

    def __init__(self, dag_id: str, **options):
        _check_options(options, DAG_OPTIONS, "DAG")
        self.dag_id = dag_id
        self.options = options
        self.tasks: dict[str, Task] = {}
        if _created is not None:
            _created.append(self)

    def __enter__(self) -> "DAG":
        _building.append(self)
        return self

    def __exit__(self, *_exc) -> None:
        _building.remove(self)

    def function_name(self, task_function: TaskFunction) -> str:
        return f"{self.dag_id}.{task_function.function.__name__}"

    def add(self, task_function: TaskFunction) -> Task:
        """A new task for the handler; a handler used twice gets ids name, name__1, ..."""
        base = task_function.options.get("task_id", task_function.__name__)
        task_id, n = base, 0
        while task_id in self.tasks:
            n += 1
            task_id = f"{base}__{n}"
        self.tasks[task_id] = Task(self, task_function, task_id)
        return self.tasks[task_id]

    def task_of(self, task_function: TaskFunction) -> Task:
        mine = [t for t in self.tasks.values() if t.task_function is task_function]
        if len(mine) > 1:
            raise AuthoringError(
                f"{task_function.__name__} is used {len(mine)} times in {self.dag_id}: "
                "wire the tasks its calls return, not the function"
            )
        return mine[0] if mine else self.add(task_function)

    def to_spec(self) -> dict:
        spec = {"dag_id": self.dag_id}
        spec.update({key: self._option_value(value) for key, value in self.options.items()})
        spec["tasks"] = [task.to_spec() for task in self.tasks.values()]
        return spec

    def _option_value(self, value):
        """A DAG option as the JSON spec writes it."""
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, TaskFunction):  # a callback defined in the file
            return self.function_name(value)
        return list(value) if isinstance(value, tuple) else value

    def task_functions(self) -> list[TaskFunction]:
        """The handlers this DAG runs: its tasks', and its callbacks' defined in the file."""
        used = [t.task_function for t in self.tasks.values()]
        return used + [v for v in self.options.values() if isinstance(v, TaskFunction)]

    def functions(self, source: str) -> dict[str, dict]:
        """name -> deploy payload of every function this DAG's tasks and callbacks run."""
        payloads = {}
        for task_function in self.task_functions():
            payload = _function_payload(self.function_name(task_function), source, task_function)
            name = payload["name"]
            if payloads.get(name, payload) != payload:
                raise AuthoringError(f"function {name} is given different settings by two tasks")
            payloads[name] = payload
        return payloads


def _function_payload(name: str, source: str, task_function: TaskFunction) -> dict:
    settings = {k: v for k, v in task_function.options.items() if k in FUNCTION_OPTIONS}
    return {"name": name, "source": source, "handler": task_function.__name__, **settings}


def task(function=None, **options):
    """``@task`` or ``@task(retries=2, trigger_rule="all_done", memory_mb=256, ...)``: the
    options are the DAG spec's task settings (task_id, args, trigger_rule, retries,
    retry_delay, retry_backoff, max_retry_delay, timeout, pool) and the function's own
    (memory_mb, secrets, requirements: PEP 508 strings, isolation: "warm" or "fresh")."""
    if function is not None:
        return TaskFunction(function, options)
    return lambda decorated: TaskFunction(decorated, options)


def dag(function=None, *, dag_id: str | None = None, **options):
    """``@dag(schedule="@daily", ...)`` on a function whose body wires the tasks: it runs at
    once, and the name is bound to the DAG (the function's name is its dag_id)."""

    def build(body) -> DAG:
        definition = DAG(dag_id or body.__name__, **options)
        with definition:
            body()
        return definition

    return build(function) if function is not None else build


# Collecting what a file or folder deploys -------------------------------------------------


@dataclass
class Bundle:
    """What a path deploys: function payloads (POST /api/v1/functions) and DAG specs (PUT
    /api/v1/dags/{dag_id}), each with the file it came from."""

    functions: dict[str, dict] = field(default_factory=dict)
    dags: dict[str, dict] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)  # "function x" / "dag y" -> file

    def add(self, kind: str, name: str, item: dict, origin: Path) -> None:
        key = f"{kind} {name}"
        if key in self.origins:
            raise AuthoringError(f"{key} is defined twice: in {self.origins[key]} and {origin}")
        self.origins[key] = origin
        (self.functions if kind == "function" else self.dags)[name] = item


def collect(path: Path) -> Bundle:
    """A ``.py`` file is a function named after the file (handler ``handler``), or, if it
    imports this module, a DAG file; a ``.json`` file is a DAG spec. A folder holds such
    files, in subfolders too; names starting with ``_`` or ``.`` are left out.
    AuthoringError for a path that holds none, or a file that cannot be read or loaded."""
    bundle = Bundle()
    for file in _files(path):
        source = _read(file)
        if file.suffix == ".json":
            spec = _read_spec(file, source)
            bundle.add("dag", spec["dag_id"], spec, file)
        elif is_dag_file(source):
            for definition in load_dag_file(file, source):
                bundle.add("dag", definition.dag_id, definition.to_spec(), file)
                for name, payload in definition.functions(source).items():
                    bundle.add("function", name, payload, file)
        else:
            bundle.add("function", file.stem, _plain_function(file, source), file)
    return bundle


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise AuthoringError(f"{file}: cannot be read: {reason}") from None


def _plain_function(file: Path, source: str) -> dict:
    """A ``NAME.py`` function; its packages may also be listed in ``NAME.requirements.txt``
    beside it (one PEP 508 requirement a line; ``#`` comments; no pip options)."""
    payload: dict = {"name": file.stem, "source": source}
    listing = file.with_name(f"{file.stem}.requirements.txt")
    if listing.is_file():
        payload["requirements"] = read_requirements(listing)
    return payload


def read_requirements(listing: Path) -> list[str]:
    """The requirements of a requirements file; AuthoringError for a pip option line."""
    requirements = []
    for number, line in enumerate(_read(listing).splitlines(), 1):
        text = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if text.startswith("-"):
            raise AuthoringError(
                f"{listing}:{number}: pip options ({text.split()[0]}) are not supported: "
                "list requirements only; set the index with UV_INDEX_URL on the server"
            )
        if text:
            requirements.append(text)
    return requirements


def _files(path: Path) -> list[Path]:
    """The files to deploy at ``path``; AuthoringError if there are none."""
    if not path.exists():
        raise AuthoringError(f"no such file or folder: {path}")
    if path.is_file():
        if path.suffix not in (".py", ".json"):
            raise AuthoringError(f"{path}: deploy takes .py and .json files, or a folder")
        return [path]
    try:
        files = sorted(
            file
            for file in path.rglob("*")
            if file.suffix in (".py", ".json")
            and file.is_file()
            and not any(part.startswith(("_", ".")) for part in file.relative_to(path).parts)
        )
    except OSError as exc:
        raise AuthoringError(f"{exc.filename or path}: cannot be read: {exc.strerror}") from None
    if not files:
        raise AuthoringError(f"nothing to deploy in {path}: it holds no .py or .json file")
    return files


def _read_spec(file: Path, source: str) -> dict:
    try:
        spec = strict_json.loads(source)
    except ValueError as exc:
        raise AuthoringError(f"{file}: malformed JSON: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("dag_id"), str):
        raise AuthoringError(f"{file}: a DAG spec is a JSON object with a dag_id")
    return spec


def is_dag_file(source: str) -> bool:
    """Whether the source imports this module (read, not run: a plain function's imports
    need not be installed where the CLI runs)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False  # deployed as a function: the server reports the error
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == MODULE:
            return True
        if isinstance(node, ast.Import) and any(a.name == MODULE for a in node.names):
            return True
    return False


def load_dag_file(file: Path, source: str) -> list[DAG]:
    """Run a DAG file and return the DAGs it defines."""
    global _created
    _created, namespace = [], {"__name__": "brisa_dag_file", "__file__": str(file)}
    try:
        exec(compile(source, str(file), "exec"), namespace)
    except AuthoringError as exc:
        raise AuthoringError(f"{file}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the file raises is reported, not a crash
        raise AuthoringError(f"{file}: {_where(exc, str(file))}") from exc
    finally:
        definitions, _created = _created, None
    if not definitions:
        raise AuthoringError(f"{file} imports {MODULE} but defines no DAG")
    for definition in definitions:
        _check_handlers(definition, namespace, file)
    return definitions


def _check_handlers(definition: DAG, namespace: dict, file: Path) -> None:
    """In the sandbox the handler is looked up by name among the file's top-level names."""
    for task_function in definition.task_functions():
        name = task_function.__name__
        bound = namespace.get(name)
        if not isinstance(bound, TaskFunction) or bound.function is not task_function.function:
            raise AuthoringError(
                f"{file}: the @task function {name} must be defined at the top level of "
                "the file, under its own name"
            )


def _where(exc: Exception, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    line = f"line {frames[-1].lineno}: " if frames else ""
    return f"{line}{type(exc).__name__}: {exc}"
