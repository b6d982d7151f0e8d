"""``deploy``: compare a file or folder with what a Brisa has, show the difference, apply it.

The plan is the same whichever way Brisa is reached:

- `Remote`: its API, at BRISA_URL with BRISA_TOKEN (``python -m app deploy PATH``);
- `Local`: the core in this process, on the database it is configured with (``deploy --local
  PATH``, and ``make run``'s examples): for release and postdeploy steps and one-off
  containers or dynos, where no web process is up or reachable. Reaching DATABASE_URL is the
  credential: no token.

Functions go first, then the DAGs that name them. Nothing is ever deleted.
"""

import hashlib
import json
from contextlib import contextmanager

from app.cli import authoring, local_db
from app.cli.client import ApiError, Client
from app.cli.errors import CliError
from app.cli.terminal import Terminal
from app.domain import dagspec
from app.domain.errors import BrisaError
from app.engine import audit, dags, environments, functions, serialize
from app.store.models import Function, FunctionVersion

MARKS = {"new": "+", "changed": "~", "unchanged": "="}


class DeployFailed(CliError):
    """A deploy that stopped: ``message`` to show, ``details`` as the API lists problems."""


# Where to deploy -----------------------------------------------------------------------


class Remote:
    """A Brisa over HTTP."""

    def __init__(self, client: Client):
        self.client = client

    def functions(self) -> dict[str, dict]:
        """Each function's latest version, by name, as the API shows it."""
        return {f["name"]: f for f in self.client.get("/functions")["functions"]}

    def dags(self) -> dict[str, dict]:
        """Each DAG with its current spec and version, by dag_id, as the API shows it."""
        return {d["dag_id"]: d for d in self.client.get("/dags")["dags"]}

    def deploy_function(self, payload: dict) -> tuple[int, bool]:
        """(version, whether it is a new one)."""
        status, body = self.client.send("POST", "/functions", payload)
        return body["version"], status == 201

    def put_dag(self, dag_id: str, spec: dict) -> tuple[int, bool]:
        status, body = self.client.send("PUT", f"/dags/{dag_id}", spec)
        return body["version"], status == 201


class Local:
    """This process's database, through the same core functions the API calls; each change
    lands in the audit log as the API's would, by ``ACTOR``."""

    ACTOR = "cli: deploy --local"

    def __init__(self, settings):
        self.settings = settings

    def functions(self) -> dict[str, dict]:
        rows = FunctionVersion.select(FunctionVersion, Function).join(Function)
        latest = {}
        for version in rows.order_by(FunctionVersion.version.desc()):
            latest.setdefault(version.function.name, version)
        return {name: serialize.function_version(v) for name, v in latest.items()}

    def dags(self) -> dict[str, dict]:
        from app.engine import dags

        return {dag.dag_id: serialize.dag(dag, version) for dag, version in dags.current_versions()}

    def deploy_function(self, payload: dict) -> tuple[int, bool]:
        version, created = functions.deploy(payload, self.settings)
        self._audit("POST /api/v1/functions", "/api/v1/functions", created)
        return version.version, created

    def put_dag(self, dag_id: str, spec: dict) -> tuple[int, bool]:
        _dag, version, changed = dags.put(dag_id, spec)
        self._audit("PUT /api/v1/dags/<dag_id>", f"/api/v1/dags/{dag_id}", changed)
        return version.version, changed

    def _audit(self, action: str, target: str, created: bool) -> None:
        audit.record(self.ACTOR, action, target, 201 if created else 200)


@contextmanager
def local_target():
    """A `Local` target, connected to this process's database while the block runs; its
    schema must be current (the release step, ``python -m app migrate``, runs first):
    CliError otherwise (app/cli/local_db.py)."""
    with local_db.connected() as settings:
        yield Local(settings)


# The plan ------------------------------------------------------------------------------


def deploy(bundle: authoring.Bundle, target, term: Terminal, dry_run: bool = False) -> dict:
    """Show what ``bundle`` would change on ``target``, then (unless ``dry_run``) apply it.
    Returns ``{"plan": [step, ...], "dry_run": bool}``, what ``--json`` prints."""
    remote_functions = target.functions()
    plan = function_steps(bundle, remote_functions)
    plan += dag_steps(bundle, set(bundle.functions) | set(remote_functions), target.dags())
    if not term.as_json:
        print_plan(plan, term, dry_run)
    if not dry_run:
        for step in plan:
            if step["status"] != "unchanged":
                step["deployed_version"] = apply(step, bundle, target, term)
    return {"plan": plan, "dry_run": dry_run}


def function_steps(bundle: authoring.Bundle, remote: dict) -> list[dict]:
    steps = []
    for name, payload in sorted(bundle.functions.items()):
        current = remote.get(name)
        differs = None if current is None else function_differences(payload, current)
        steps.append(plan_step("function", name, differs, current and current["version"]))
    return steps


def function_differences(payload: dict, current: dict) -> list[str]:
    """The fields a deploy would change. The server keeps env values secret, so only the
    fields a file sets are compared, beside the source, handler and runtime."""
    mine = {
        "source": hashlib.sha256(payload["source"].encode()).hexdigest(),
        "handler": payload.get("handler", "handler"),
        "runtime": payload.get("runtime", "python"),
    }
    theirs = {
        "source": current["source_sha256"],
        "handler": current["handler"],
        "runtime": current["runtime"],
    }
    for key in ("timeout", "memory_mb", "secrets", "isolation"):
        if key in payload:
            mine[key], theirs[key] = payload[key], current.get(key)
    if "requirements" in payload or current.get("requirements"):
        mine["requirements"] = _normalised(payload.get("requirements", []))
        theirs["requirements"] = list(current.get("requirements") or [])
    return [key for key in mine if mine[key] != theirs[key]]


def _normalised(requirements) -> list:
    """As the server stores them (canonical, sorted); as given if invalid (the deploy says why)."""
    try:
        return list(environments.normalise_requirements(requirements))
    except environments.EnvironmentSpecError:
        return list(requirements)


def dag_steps(bundle: authoring.Bundle, function_names: set, remote: dict) -> list[dict]:
    """Each DAG is validated here first, with the functions that will exist: a bad spec stops
    the deploy before anything is applied, with every problem listed."""
    steps, problems = [], []
    for dag_id, spec in sorted(bundle.dags.items()):
        errors = dagspec.validate_dag_spec(spec, function_names)
        if errors:
            origin = bundle.origins[f"dag {dag_id}"]
            problems += [{**e, "field": f"{origin}: {e['field']}"} for e in errors]
            continue
        normal = json.loads(json.dumps(dagspec.parse_dag_spec(spec, function_names).to_dict()))
        current = remote.get(dag_id)
        differs = None if current is None else dict_differences(normal, current["spec"])
        steps.append(plan_step("dag", dag_id, differs, current and current["version"]))
    if problems:
        raise DeployFailed(f"{len(problems)} problem(s) in the DAG specs", problems)
    return steps


def dict_differences(mine: dict, theirs: dict) -> list[str]:
    return sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))


def plan_step(kind: str, name: str, differs: list | None, version: int | None) -> dict:
    """One line of the plan; ``differs`` None means new."""
    return {
        "kind": kind,
        "name": name,
        "status": "new" if differs is None else "changed" if differs else "unchanged",
        "fields": differs or [],
        "version": version,  # the current version on the target
    }


def print_plan(plan: list[dict], term: Terminal, dry_run: bool) -> None:
    width = max((len(step["name"]) for step in plan), default=0)
    for kind, title in (("function", "functions"), ("dag", "DAGs")):
        steps = [step for step in plan if step["kind"] == kind]
        if steps:
            term.line(title)
        for step in steps:
            status = step["status"]
            why = f" ({', '.join(step['fields'])})" if step["fields"] else ""
            mark = term.paint(MARKS[status], status)
            term.line(f"  {mark} {step['name'].ljust(width)}  {term.paint(status, status)}{why}")
    pending = sum(step["status"] != "unchanged" for step in plan)
    tail = " (dry run: nothing deployed)" if dry_run and pending else ""
    term.line(f"{pending} to deploy, {len(plan) - pending} unchanged{tail}")


def apply(step: dict, bundle: authoring.Bundle, target, term: Terminal) -> int:
    """Deploy one step; returns the version it made (or found identical)."""
    what = f"{step['kind']} {step['name']}"
    try:
        if step["kind"] == "function":
            version, created = target.deploy_function(bundle.functions[step["name"]])
        else:
            version, created = target.put_dag(step["name"], bundle.dags[step["name"]])
    except (ApiError, BrisaError) as exc:
        message = f"deploying {what} ({bundle.origins[what]}) failed: {exc.message}"
        raise DeployFailed(message, exc.details) from None
    if not term.as_json:
        term.line(f"deployed {what} v{version}{'' if created else ' (unchanged)'}")
    return version
