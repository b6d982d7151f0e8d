"""The REST API under /api/v1: parse the request, call the core, render JSON."""

import json
from functools import wraps
from urllib.parse import urlparse

from flask import Blueprint, current_app, g, jsonify, request

from app.domain.errors import BadRequest, Invalid, UnsupportedMediaType
from app.domain.timeutil import isoformat
from app.engine import audit, auth, dags, functions, pools, runs, webhooks
from app.engine import secret_store as secrets
from app.store.models import ApiToken, DagRun, FunctionVersion, Pool, Secret, TaskTry
from app.store.transitions import RUN_FINISHED
from app.web import serialize

api = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_WAIT_S = 60
MAX_PAGE = 100


@api.before_request
def authenticate():
    settings = current_app.config["BRISA"]
    g.principal = auth.identify(request.headers.get("Authorization"), settings.admin_token)
    g.role = g.principal.role


@api.after_request
def audit_changes(response):
    """Every accepted change is recorded: who, which route, which path, the status."""
    if request.method in CHANGES and response.status_code < 400 and g.get("principal"):
        rule = request.url_rule.rule if request.url_rule else request.path
        audit.record(
            g.principal.actor, f"{request.method} {rule}", request.path, response.status_code
        )
    return response


CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


def needs(role: str):
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            auth.require(g.role, role)
            return view(*args, **kwargs)

        return guarded

    return decorate


def json_body(optional: bool = False):
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return None
        raise BadRequest("a JSON body is required")
    if not request.is_json:
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if _has_nul(body):
        raise Invalid([{"field": "", "message": "strings may not contain NUL (\\u0000)"}])
    return body


def _has_nul(value) -> bool:
    """NUL cannot be stored in a Postgres text column: refuse it up front."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise Invalid([{"field": name, "message": f"must be a whole number from {low} to {high}"}])
    return int(value)


def float_arg(name: str, high: float) -> float | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number <= high:
        raise Invalid([{"field": name, "message": f"must be a number of seconds from 0 to {high}"}])
    return number


# Functions ------------------------------------------------------------------------------


@api.post("/functions")
@needs("admin")
def deploy_function():
    version, created = functions.deploy(json_body(), current_app.config["BRISA"])
    return jsonify(serialize.function_version(version)), 201 if created else 200


@api.get("/functions")
@needs("viewer")
def list_functions():
    rows = FunctionVersion.select().order_by(FunctionVersion.version.desc())
    latest = {}
    for version in rows:
        latest.setdefault(version.function_id, version)
    items = sorted(latest.values(), key=lambda v: v.function.name)
    return jsonify({"functions": [serialize.function_version(v) for v in items]})


@api.get("/functions/<name>")
@needs("viewer")
def get_function(name):
    fn = functions.get(name)
    versions = list(fn.versions.order_by(FunctionVersion.version.desc()))
    return jsonify(serialize.function(fn, versions))


@api.get("/functions/<name>/versions/<int:number>")
@needs("viewer")
def get_function_version(name, number):
    return jsonify(serialize.function_version(functions.get_version(name, number), source=True))


@api.delete("/functions/<name>")
@needs("admin")
def delete_function(name):
    functions.delete(name)
    return "", 204


@api.post("/functions/<name>/invoke")
@needs("operator")
def invoke_function(name):
    wait = float_arg("wait", MAX_WAIT_S)
    callback_url = request.args.get("callback_url") or request.headers.get("X-Callback-Url")
    if callback_url and urlparse(callback_url).scheme not in ("http", "https"):
        raise Invalid([{"field": "callback_url", "message": "must be an http(s) URL"}])
    run = runs.invoke(name, json_body(optional=True), callback_url=callback_url)
    if wait:
        run = runs.wait_until_finished(run.id, wait)
    body = serialize.run(run, runs.task_instances(run))
    body["result"] = body["tasks"][0]["result"]
    body["error"] = body["tasks"][0]["error"]
    return jsonify(body), 200 if run.state in RUN_FINISHED else 202


# DAGs -----------------------------------------------------------------------------------


@api.post("/dags")
@needs("admin")
def create_dag():
    dag, version = dags.create(json_body())
    return jsonify(_with_revealed_secret(dag, serialize.dag(dag, version))), 201


@api.put("/dags/<dag_id>")
@needs("admin")
def put_dag(dag_id):
    dag, version, changed = dags.put(dag_id, json_body())
    body = _with_revealed_secret(dag, serialize.dag(dag, version))
    return jsonify(body), 201 if changed else 200


def _with_revealed_secret(dag, body: dict) -> dict:
    """The response that creates a DAG carries its webhook secret, once."""
    if getattr(dag, "revealed_webhook_secret", None):
        body["webhook_secret"] = dag.revealed_webhook_secret
    return body


@api.post("/dags/<dag_id>/webhook-secret")
@needs("admin")
def rotate_webhook_secret(dag_id):
    return jsonify({"webhook_secret": dags.rotate_webhook_secret(dags.get(dag_id))})


@api.get("/callbacks/secret")
@needs("admin")
def callback_secret():
    """The secret Brisa signs async-invocation callbacks with (Standard Webhooks)."""
    secret = webhooks.callback_secret(current_app.config["BRISA"].secret_key)
    return jsonify({"secret": secret})


@api.get("/dags")
@needs("viewer")
def list_dags():
    items = [
        serialize.dag(dag, version, _last_run(dag)) for dag, version in dags.current_versions()
    ]
    return jsonify({"dags": items})


@api.get("/dags/<dag_id>")
@needs("viewer")
def get_dag(dag_id):
    dag = dags.get(dag_id)
    return jsonify(serialize.dag(dag, dags.current_version(dag), _last_run(dag)))


def _last_run(dag):
    return DagRun.select().where(DagRun.dag == dag).order_by(DagRun.id.desc()).first()


@api.patch("/dags/<dag_id>")
@needs("operator")
def patch_dag(dag_id):
    dag = dags.set_paused(dag_id, json_body())
    return jsonify(serialize.dag(dag, dags.current_version(dag), _last_run(dag)))


@api.delete("/dags/<dag_id>")
@needs("admin")
def delete_dag(dag_id):
    dags.delete(dag_id)
    return "", 204


# Secrets --------------------------------------------------------------------------------


def _secret_json(secret) -> dict:
    return {"name": secret.name, "created_at": isoformat(secret.created_at)}


@api.post("/secrets")
@needs("admin")
def put_secret():
    secret, created = secrets.put(json_body())
    return jsonify(_secret_json(secret)), 201 if created else 200


@api.get("/secrets")
@needs("admin")
def list_secrets():
    rows = Secret.select().order_by(Secret.name)
    return jsonify({"secrets": [_secret_json(row) for row in rows]})


@api.get("/secrets/<name>")
@needs("admin")
def get_secret(name):
    return jsonify(_secret_json(secrets.get(name)))


@api.delete("/secrets/<name>")
@needs("admin")
def delete_secret(name):
    secrets.get(name).delete_instance()
    return "", 204


# Tokens and the audit log ----------------------------------------------------------------


def _token_json(row) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": isoformat(row.created_at),
        "expires_at": isoformat(row.expires_at),
        "revoked_at": isoformat(row.revoked_at),
    }


@api.post("/tokens")
@needs("admin")
def create_token():
    body = json_body()
    if not isinstance(body, dict) or set(body) - {"role", "name", "expires_in_days"}:
        raise Invalid(
            [{"field": "", "message": 'the body may hold "role", "name", "expires_in_days"'}]
        )
    name, days = body.get("name", ""), body.get("expires_in_days")
    if not isinstance(name, str) or len(name) > 100:
        raise Invalid([{"field": "name", "message": "a string of at most 100 characters"}])
    if days is not None and (
        not isinstance(days, int | float) or isinstance(days, bool) or not 0 < days <= 36500
    ):
        raise Invalid([{"field": "expires_in_days", "message": "a number of days, up to 36500"}])
    token = auth.create_token(body.get("role"), name, days)
    row = ApiToken.get(ApiToken.token_hash == auth.hash_token(token))
    return jsonify({**_token_json(row), "token": token}), 201


@api.get("/tokens")
@needs("admin")
def list_tokens():
    return jsonify(
        {"tokens": [_token_json(row) for row in ApiToken.select().order_by(ApiToken.id)]}
    )


@api.delete("/tokens/<int:token_id>")
@needs("admin")
def revoke_token(token_id):
    return jsonify(_token_json(auth.revoke(token_id)))


@api.get("/audit")
@needs("admin")
def audit_log():
    limit = int_arg("limit", 50, 1, MAX_PAGE)
    events = audit.page(limit, int_arg("cursor", None, 1, 2**62))
    body = {
        "events": [
            {
                "id": e.id,
                "at": isoformat(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "status": e.status,
            }
            for e in events
        ],
        "next_cursor": events[-1].id if len(events) == limit else None,
    }
    return jsonify(body)


# Pools ----------------------------------------------------------------------------------


def _pool_json(pool) -> dict:
    return {"name": pool.name, "slots": pool.slots, "description": pool.description}


@api.get("/pools")
@needs("viewer")
def list_pools():
    return jsonify({"pools": [_pool_json(p) for p in Pool.select().order_by(Pool.name)]})


@api.get("/pools/<name>")
@needs("viewer")
def get_pool(name):
    return jsonify(_pool_json(pools.get(name)))


@api.put("/pools/<name>")
@needs("admin")
def put_pool(name):
    pool, created = pools.put(name, json_body())
    return jsonify(_pool_json(pool)), 201 if created else 200


@api.delete("/pools/<name>")
@needs("admin")
def delete_pool(name):
    pools.get(name).delete_instance()
    return "", 204


# Runs -----------------------------------------------------------------------------------


@api.post("/dags/<dag_id>/runs")
@needs("operator")
def trigger_run(dag_id):
    body = json_body(optional=True) or {}
    if not isinstance(body, dict) or set(body) - {"conf", "logical_date"}:
        raise Invalid(
            [{"field": "", "message": 'the body may hold only "conf" and "logical_date"'}]
        )
    logical_date = runs.parse_date(body.get("logical_date"), "logical_date")
    run, _ = runs.trigger(dag_id, body.get("conf"), logical_date=logical_date)
    return jsonify(serialize.run(run, runs.task_instances(run))), 201


@api.post("/dags/<dag_id>/backfill")
@needs("operator")
def backfill(dag_id):
    body = json_body()
    if not isinstance(body, dict) or set(body) != {"start", "end"}:
        raise Invalid([{"field": "", "message": 'the body must be {"start": ..., "end": ...}'}])
    start = runs.parse_date(body["start"], "start")
    end = runs.parse_date(body["end"], "end")
    created = runs.backfill(dag_id, start, end)
    return jsonify({"created": len(created), "runs": [serialize.run(r) for r in created]}), 201


@api.get("/dags/<dag_id>/runs")
@needs("viewer")
def list_runs(dag_id):
    dag = dags.get(dag_id)
    limit = int_arg("limit", 25, 1, MAX_PAGE)
    cursor = int_arg("cursor", None, 1, 2**62)
    page = runs.list_for_dag(dag, request.args.get("state"), limit, cursor)
    next_cursor = page[-1].id if len(page) == limit else None
    return jsonify({"runs": [serialize.run(r) for r in page], "next_cursor": next_cursor})


@api.get("/runs/<int:run_id>")
@needs("viewer")
def get_run(run_id):
    run = runs.get(run_id)
    return jsonify(serialize.run(run, runs.task_instances(run)))


@api.post("/runs/<int:run_id>/cancel")
@needs("operator")
def cancel_run(run_id):
    run = runs.cancel(run_id)
    return jsonify(serialize.run(run, runs.task_instances(run)))


@api.post("/runs/<int:run_id>/rerun")
@needs("operator")
def rerun_failed(run_id):
    cleared = runs.rerun_failed(run_id)
    run = runs.get(run_id)
    return jsonify({"cleared": cleared, "run": serialize.run(run, runs.task_instances(run))})


@api.post("/runs/<int:run_id>/tasks/<task_id>/mark")
@needs("operator")
def mark_task(run_id, task_id):
    body = json_body()
    if not isinstance(body, dict) or set(body) != {"state"}:
        raise Invalid([{"field": "", "message": 'the body must be {"state": "success"|"failed"}'}])
    return jsonify(serialize.task_instance(runs.mark(run_id, task_id, body["state"])))


@api.get("/runs/<int:run_id>/tasks/<task_id>")
@needs("viewer")
def get_task_instance(run_id, task_id):
    ti = runs.task_instance(run_id, task_id)
    body = serialize.task_instance(ti)
    body["tries"] = [serialize.task_try(t) for t in ti.tries.order_by(TaskTry.try_number)]
    return jsonify(body)


@api.get("/runs/<int:run_id>/tasks/<task_id>/logs")
@needs("viewer")
def get_logs(run_id, task_id):
    ti = runs.task_instance(run_id, task_id)
    try_number = int_arg("try", max(ti.try_number, 1), 1, 10_000)
    offset = int_arg("offset", 0, 0, 2**31)
    text, next_offset = runs.logs(ti, try_number, offset)
    body = {"try_number": try_number, "state": ti.state, "text": text, "next_offset": next_offset}
    return jsonify(body)


@api.post("/runs/<int:run_id>/tasks/<task_id>/clear")
@needs("operator")
def clear_task(run_id, task_id):
    downstream = request.args.get("downstream", "false").lower() in ("1", "true", "yes")
    cleared = runs.clear(run_id, task_id, downstream)
    run = runs.get(run_id)
    return jsonify({"cleared": cleared, "run": serialize.run(run, runs.task_instances(run))})
