"""Deploying functions: validate, check the handler loads, store an immutable version."""

import ast
import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass

import peewee

from app.config import PROJECT_ROOT, Settings
from app.domain import runtime_specs
from app.domain.errors import Conflict, Invalid, NotFound
from app.engine import environments
from app.store.db import Compiled, Slot, db
from app.store.models import Function, FunctionVersion

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")  # the API's contract
RUNTIMES = ("python", "http", "sql", "shell")  # app/sandbox runs each
# The range of a function's own timeout, part of the API's contract (openapi.json); a
# function that sets none gets BRISA_DEFAULT_TIMEOUT.
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 0.001, 24 * 3600
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"  # the load check's PATH, as a try's
# A deploy's fields.
FIELDS = {
    *("name", "source", "handler", "runtime", "timeout", "memory_mb", "env", "secrets"),
    *("requirements", "isolation"),
}
ISOLATIONS = ("warm", "fresh")  # warm executors serve many tries; fresh: a process per try
LOAD_CHECK = (  # the load check's command line, in the environment's interpreter (``-I``)
    "import sys; sys.path.insert(0, {root!r}); from app.sandbox.load_check import main; main()"
)


@dataclass(frozen=True)
class Prepared:
    """A python version's environment, made at deploy: its lock, and how the build went."""

    lock: str = ""
    lock_sha256: str = ""
    build_log: str = ""
    build_s: float | None = None


def deploy(payload, settings: Settings, upgrade: bool = False) -> tuple[FunctionVersion, bool]:
    """Deploy ``payload``; returns (version, created). Identical to the latest version: that
    version, not created, and nothing resolved or built. A python function's requirements
    (its PEP 723 ``dependencies`` and the body's ``requirements``) are resolved to a lock,
    which is built into an environment, where the module must load. ``upgrade`` resolves
    again even when nothing changed (a new version if the lock differs), as pip's
    ``--upgrade``. Raises Invalid (422) with every problem found, or with the resolver's or
    the builder's own message."""
    spec = validate(payload, settings)
    digest = _digest(spec)
    latest = _latest_by_name(spec["name"])
    if not upgrade and latest is not None and latest.sha256 == digest:
        return latest, False
    prepared = prepare(spec, settings) if spec["runtime"] == "python" else Prepared()
    for _ in range(3):  # two deploys of one name racing: the loser retries with n+1
        try:
            return _store(spec, digest, prepared)
        except peewee.IntegrityError:
            continue
    raise Conflict(f"function {spec['name']!r} is being deployed concurrently; try again")


def validate(payload, settings: Settings) -> dict:
    if not isinstance(payload, dict):
        raise Invalid([{"field": "", "message": "the body must be a JSON object"}])
    errors = [{"field": key, "message": "unknown field"} for key in sorted(set(payload) - FIELDS)]
    spec = {
        "name": payload.get("name"),
        "source": payload.get("source"),
        "handler": payload.get("handler", "handler"),
        "runtime": payload.get("runtime", "python"),
        "timeout": payload.get("timeout", settings.default_timeout_s),
        "memory_mb": payload.get("memory_mb", settings.default_memory_mb),
        "env": {} if payload.get("env") is None else payload["env"],
        "secrets": payload.get("secrets", []),
        "requirements": payload.get("requirements", []),
        "isolation": payload.get("isolation", "warm"),
    }
    python = spec["runtime"] == "python"
    if not python:
        spec["handler"] = "handler"  # ignored by the other runtimes
    for field, check in CHECKS:
        message = check(spec[field], settings)
        if message:
            errors.append({"field": field, "message": message})
    if python and not errors:
        errors += _source_problems(spec["source"], spec["handler"])
        errors += _package_problems(spec)
    if not python and spec["requirements"]:
        errors.append({"field": "requirements", "message": "only python functions have packages"})
    elif not python and not {e["field"] for e in errors} & {"source", "runtime", "secrets"}:
        problems = runtime_specs.spec_problems(spec["runtime"], spec["source"], spec["secrets"])
        errors += [{"field": "source", "message": message} for message in problems]
    if errors:
        raise Invalid(errors)
    spec["timeout"] = float(spec["timeout"])
    return spec


# Each check: (the field's value, the settings) -> what is wrong with it, or None.


def _check_name(value, settings: Settings) -> str | None:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        return "required: letters, digits, '_', '.', '-' (at most 100, not starting with . or -)"
    return None


def _check_source(value, settings: Settings) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "required: the function's source as a string (Python, or a JSON spec)"
    if len(value.encode()) > settings.max_source_bytes:
        return f"over {settings.max_source_bytes} bytes"
    return None


def _check_handler(value, settings: Settings) -> str | None:
    if not isinstance(value, str) or not value.isidentifier():
        return "must be a Python identifier"
    return None


def _check_runtime(value, settings: Settings) -> str | None:
    if value not in RUNTIMES:
        return f"must be one of: {', '.join(RUNTIMES)}"
    return None


def _check_timeout(value, settings: Settings) -> str | None:
    if not _is_number(value) or not MIN_TIMEOUT_S <= value <= MAX_TIMEOUT_S:
        return f"must be a number of seconds from {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S}"
    return None


def _check_memory(value, settings: Settings) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 64 <= value <= 65536:
        return "must be a whole number of MiB from 64 to 65536"
    return None


def _check_env(value, settings: Settings) -> str | None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return "must be an object of string values"
    return None


def _check_isolation(value, settings: Settings):
    if value not in ISOLATIONS:
        return f"must be one of: {', '.join(ISOLATIONS)}"


def _check_requirements(value, settings: Settings):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return 'must be a list of PEP 508 requirements, such as ["humanize>=4"]'


def _package_problems(spec: dict) -> list[dict]:
    """Check the packages a python function declares; on success ``spec["requirements"]`` is
    the canonical list (the deploy's own and the source's PEP 723 ``dependencies``)."""
    try:
        metadata = environments.parse_script_metadata(spec["source"])
        environments.check_requires_python(metadata.requires_python)
    except environments.EnvironmentSpecError as exc:
        return [{"field": "source", "message": str(exc)}]
    try:
        requirements = environments.normalise_requirements(spec["requirements"])
        environments.normalise_requirements([*requirements, *metadata.dependencies])
    except environments.EnvironmentSpecError as exc:
        return [{"field": "requirements", "message": str(exc)}]
    spec["requirements"] = list(requirements)
    return []


def _check_secrets(value, settings: Settings) -> str | None:
    if not isinstance(value, list) or not all(
        isinstance(name, str) and NAME_PATTERN.match(name) for name in value
    ):
        return "must be a list of secret names (letters, digits, '_', '.', '-')"
    if len(set(value)) != len(value):
        return "lists a secret twice"
    return None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CHECKS = [
    ("name", _check_name),
    ("requirements", _check_requirements),
    ("isolation", _check_isolation),
    ("source", _check_source),
    ("handler", _check_handler),
    ("runtime", _check_runtime),
    ("timeout", _check_timeout),
    ("memory_mb", _check_memory),
    ("env", _check_env),
    ("secrets", _check_secrets),
]


def _source_problems(source: str, handler: str) -> list[dict]:
    """What can be told without running the code: syntax, and a top-level handler binding."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        where = f" (line {exc.lineno}, column {exc.offset})" if exc.lineno else ""
        return [{"field": "source", "message": f"SyntaxError: {exc.msg}{where}"}]
    bound = _top_level_bindings(tree)
    if handler not in bound:
        message = f"the source defines no top-level {handler!r}"
        return [{"field": "handler", "message": message}]
    if isinstance(bound[handler], ast.Constant | ast.List | ast.Dict | ast.Tuple | ast.Set):
        return [{"field": "handler", "message": f"{handler!r} is not callable"}]
    return []


def _top_level_bindings(tree: ast.Module) -> dict[str, ast.AST]:
    """Each top-level name: the statement or value it is bound to."""
    bound: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = node.value
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound[(alias.asname or alias.name).split(".")[0]] = node
    return bound


def prepare(spec: dict, settings: Settings) -> Prepared:
    """Resolve the function's packages to a lock, build its environment (or find it built),
    and load the module there as a try would; Invalid (422) with the resolver's, the
    builder's or the module's own message."""
    metadata = environments.parse_script_metadata(spec["source"])
    wanted = [*spec["requirements"], *metadata.dependencies]
    try:
        lock = environments.resolve(wanted, timeout_s=settings.resolve_timeout_s)
    except environments.ResolutionError as exc:
        raise Invalid([{"field": "requirements", "message": str(exc)}]) from None
    try:
        built = environments.ensure_built(
            lock.text,
            env_dir=settings.environments_dir,
            cache_mb=settings.env_cache_mb,
            timeout_s=settings.build_timeout_s,
        )
    except environments.BuildError as exc:
        raise Invalid([{"field": "requirements", "message": str(exc)}]) from None
    with environments.in_use(built.path):
        check_loads(spec, settings, str(built.python))
    return Prepared(lock.text, lock.sha256, built.log, built.duration_s)


def check_loads(spec: dict, settings: Settings, python: str = sys.executable) -> None:
    """Import the module as a try would, in a process of its own started with ``python``
    (app/sandbox/load_check.py, confined like a try), and check the handler is callable;
    Invalid (422) with the reason if not."""
    job = {
        "runtime": spec["runtime"],
        "source": spec["source"],
        "handler": spec["handler"],
        "filename": f"<function {spec['name']}>",
        "env": spec["env"],
        "memory_mb": spec["memory_mb"],
        "result_cap_bytes": settings.result_cap_bytes,
    }
    error = load_check_error(json.dumps(job), settings.load_check_timeout_s, python)
    if error is not None:
        raise Invalid([{"field": "source", "message": f"loading the module failed: {error}"}])


def load_check_error(job_json: str, timeout_s: float, python: str = sys.executable) -> str | None:
    """Run the load check on ``job_json`` with ``python`` (isolated: ``-I``, so it sees its
    own environment's packages and the standard library only), killed after ``timeout_s``;
    None if the module loads, else why not."""
    command = [python, "-I", "-c", LOAD_CHECK.format(root=str(PROJECT_ROOT))]
    env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,  # its own process group: killed whole on a timeout
        text=True,
    )
    try:
        answer, _ = process.communicate(job_json, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:g}s"
    finally:
        _kill_group(process.pid)
        process.wait()
    try:
        outcome = json.loads(answer.splitlines()[-1])
    except (IndexError, ValueError):
        return f"the module's process exited with code {process.returncode} before answering"
    return None if outcome["ok"] else outcome["error"]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


DEFAULTS_LEFT_OUT = {"secrets": [], "requirements": [], "isolation": "warm"}


def _digest(spec: dict) -> str:
    """Settings added later hash as before they existed when left at their default:
    redeploying an unchanged function after an upgrade finds its latest version instead of
    making a new one."""
    hashed = {k: v for k, v in spec.items() if DEFAULTS_LEFT_OUT.get(k, object()) != v}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()


def _store(spec: dict, digest: str, prepared: Prepared) -> tuple[FunctionVersion, bool]:
    with db.atomic():
        function, _ = Function.get_or_create(name=spec["name"])
        latest = latest_version(function)
        same_lock = latest is not None and latest.lock_sha256 == prepared.lock_sha256
        if latest is not None and latest.sha256 == digest and same_lock:
            return latest, False
        version = FunctionVersion.create(
            function=function,
            version=(latest.version if latest else 0) + 1,
            sha256=digest,
            **{k: v for k, v in spec.items() if k != "name"},
            **dataclasses.asdict(prepared),
        )
        return version, True


def _latest_by_name(name: str) -> FunctionVersion | None:
    function = Function.get_or_none(Function.name == name)
    return None if function is None else latest_version(function)


def latest_version(function: Function) -> FunctionVersion | None:
    query = FunctionVersion.select().where(FunctionVersion.function == function)
    return query.order_by(FunctionVersion.version.desc()).first()


def get(name: str) -> Function:
    function = Function.get_or_none(Function.name == name)
    if function is None:
        raise NotFound(f"no function named {name!r}")
    return function


def get_version(name: str, number: int) -> FunctionVersion:
    version = FunctionVersion.get_or_none(
        (FunctionVersion.function == get(name)) & (FunctionVersion.version == number)
    )
    if version is None:
        raise NotFound(f"function {name!r} has no version {number}")
    return version


def resolve(name: str, number: int | None) -> FunctionVersion:
    """The version a new run pins: ``number``, or the latest."""
    if number is not None:
        return get_version(name, number)
    version = _LATEST_BY_NAME.first(name=name)
    if version is None:
        get(name)  # raises NotFound for an unknown function
        raise NotFound(f"function {name!r} has no versions")
    return version


_LATEST_BY_NAME = Compiled(  # asked on every trigger: compiled (app/store/db.py)
    lambda: (
        FunctionVersion.select(FunctionVersion, Function)
        .join(Function)
        .where(Function.name == Slot("name"))
        .order_by(FunctionVersion.version.desc())
        .limit(1)
    )
)


def names() -> set[str]:
    return {row.name for row in Function.select(Function.name)}
