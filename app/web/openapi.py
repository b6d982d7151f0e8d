"""GET /api/v1/openapi.json: the OpenAPI 3.1 contract of every route under /api/v1, /hooks,
/healthz, /readyz and /metrics. No token needed to read it.

The document is plain Python data built from small helpers (app/web/api/openapi_parts.py);
the lists it names (runtimes, roles, trigger rules, states, limits) come from the modules that
enforce them. Each /api/v1 resource module in app/web/api/ holds its own paths beside its
routes; this module holds what they share: the component schemas and error responses, the
public paths (/hooks, health, metrics, this document) and the assembly.
"""

from flask import Blueprint, jsonify

from app.config import current
from app.domain.dagspec import _ID, PRESETS
from app.domain.trigger_rules import TRIGGER_RULES
from app.engine import functions, secret_store
from app.engine.auth import ROLES
from app.store.transitions import RunState, TaskState
from app.web import api
from app.web.api.openapi_parts import (
    ANY,
    DAG_ID,
    array,
    boolean,
    closed,
    errors,
    header_param,
    integer,
    nullable,
    number,
    obj,
    operation,
    ref,
    request_body,
    response,
    string,
)
from app.web.health import PROMETHEUS_TYPE

docs = Blueprint("docs", __name__)

OPENAPI_PATH = "/api/v1/openapi.json"


@docs.get(OPENAPI_PATH)
def openapi_document():
    return jsonify(document())


# Errors ---------------------------------------------------------------------------------


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, or a required body is missing",
    401: "No bearer token, or an unknown, revoked or expired one",
    403: "The token's role is too low for this operation",
    404: "No such resource (or a path that matches no route)",
    409: "Conflict with the current state",
    413: "The body is over BRISA_MAX_BODY_BYTES",
    415: "The body is not Content-Type: application/json",
    422: "Invalid: details lists every problem as {field, message}",
    503: "The database is unavailable; retry after the Retry-After header's seconds",
}
# /hooks/{dag_id} takes no bearer token: its 401 is about the delivery's signature.
SIGNATURE_ERROR = "Error401Signature"
SIGNATURE_ERROR_DESCRIPTION = (
    "A missing or bad signature (or a missing webhook-id or webhook-timestamp beside it), "
    "a body that does not match it, or a Standard Webhooks timestamp more than 5 minutes "
    "off; nothing is created. Not a bearer-token error: this route takes none"
)


# Schemas --------------------------------------------------------------------------------

DATE_TIME = string(format="date-time")
MAYBE_DATE_TIME = nullable(DATE_TIME)
ID_PATTERN = f"^{_ID.pattern}$"
NAME = string(pattern=functions.NAME_PATTERN.pattern, minLength=1, maxLength=100)


def error_schema() -> dict:
    problem = closed({"field": string(), "message": string()})
    details = {
        "anyOf": [
            {"type": "null"},
            array(problem, description="422: every problem found"),
            obj({}, additional=True, description="extra facts, e.g. {dags: [...]} on a 409"),
        ]
    }
    inner = closed({"code": string(), "message": string(), "details": details})
    return closed({"error": inner})


def task_spec_schema() -> dict:
    return obj(
        {
            "task_id": string(pattern=ID_PATTERN),
            "function": string(description="a deployed function's name"),
            "version": nullable(integer(minimum=1)),
            "upstream": array(string(), description="task ids this task waits for"),
            "args": obj({}, additional=True),
            "trigger_rule": string(enum=list(TRIGGER_RULES)),
            **inherited_properties(),
        },
        required=("task_id", "function"),
    )


def inherited_properties() -> dict:
    return {
        "retries": integer(minimum=0),
        "retry_delay": number(exclusiveMinimum=0),
        "retry_backoff": boolean(),
        "max_retry_delay": number(exclusiveMinimum=0),
        "timeout": nullable(number(exclusiveMinimum=0)),
        "pool": nullable(string(pattern=ID_PATTERN, description="a pool's name")),
    }


def dag_spec_schema(dag_id_required: bool) -> dict:
    presets = ", ".join(PRESETS)
    return obj(
        {
            "dag_id": string(pattern=ID_PATTERN),
            "description": string(),
            "schedule": nullable(string(description=f"5-field cron, or one of {presets}")),
            "timezone": string(description="an IANA time zone name", default="UTC"),
            "start_date": nullable(string(description="ISO-8601 date or date-time")),
            "end_date": nullable(string(description="ISO-8601 date or date-time")),
            "catchup": boolean(),
            "max_active_runs": integer(minimum=1),
            "max_active_tasks": integer(minimum=1),
            "tags": array(string()),
            "default_args": obj(inherited_properties()),
            "tasks": array(ref("TaskSpec"), minItems=1),
            "dagrun_timeout": nullable(number(exclusiveMinimum=0)),
            "on_success": nullable(string(description="a function called with the summary")),
            "on_failure": nullable(string(description="a function called with the summary")),
        },
        required=("dag_id", "tasks") if dag_id_required else ("tasks",),
        description="A DAG spec; cycles, unknown functions and pools are 422s.",
    )


def function_deploy_schema() -> dict:
    return obj(
        {
            "name": NAME,
            "source": string(
                minLength=1,
                maxLength=current().max_source_bytes,
                description="Python source with the handler, or (other runtimes) a JSON spec",
            ),
            "handler": string(default="handler", description="a Python identifier"),
            "runtime": string(enum=list(functions.RUNTIMES), default="python"),
            "timeout": number(exclusiveMinimum=0, maximum=functions.MAX_TIMEOUT_S),
            "memory_mb": integer(minimum=64, maximum=65536),
            "env": nullable(obj({}, additional=string())),
            "secrets": array(NAME, uniqueItems=True),
            "requirements": array(
                string(minLength=1, maxLength=500),
                maxItems=200,
                description="PEP 508 requirements (python only), beside the source's PEP 723"
                " dependencies; resolved to a lock at deploy",
            ),
            "isolation": string(
                enum=list(functions.ISOLATIONS),
                default="warm",
                description="warm: executors serve successive tries; fresh: a process per try",
            ),
        },
        required=("name", "source"),
    )


def function_version_schema(with_source: bool) -> dict:
    properties = {
        "name": string(),
        "version": integer(minimum=1),
        "sha256": string(description="of the whole version: source and settings"),
        "source_sha256": string(description="SHA-256 of the source alone (UTF-8), in hex"),
        "handler": string(),
        "runtime": string(enum=list(functions.RUNTIMES)),
        "timeout": number(),
        "memory_mb": integer(),
        "env": array(string(), description="names only"),
        "secrets": array(string()),
        "requirements": array(string(), description="as deployed, canonical"),
        "packages": array(string(), description="name==version of every package locked"),
        "lock_sha256": string(description="SHA-256 of the lock; empty: no packages"),
        "isolation": string(enum=list(functions.ISOLATIONS)),
        "build_s": nullable(number(description="seconds the environment took to build")),
        "created_at": DATE_TIME,
    }
    if with_source:
        properties["source"] = string()
        properties["lock"] = string(description="requirements.txt with hashes, from uv")
        properties["build_log"] = string()
    return closed(properties)


def run_schema() -> dict:
    properties = {
        "run_id": integer(),
        "dag_id": nullable(string()),
        "dag_version": nullable(integer()),
        "function": nullable(string()),
        "run_type": string(description="manual, scheduled, backfill, webhook, invoke, ..."),
        "state": string(enum=[str(s) for s in RunState]),
        "logical_date": MAYBE_DATE_TIME,
        "data_interval_start": MAYBE_DATE_TIME,
        "data_interval_end": MAYBE_DATE_TIME,
        "conf": ANY,
        "created_at": DATE_TIME,
        "started_at": MAYBE_DATE_TIME,
        "finished_at": MAYBE_DATE_TIME,
        "url": string(),
        "tasks": array(ref("TaskInstance"), description="only where a single run is returned"),
    }
    return obj(properties, required=[k for k in properties if k != "tasks"])


def task_instance_schema(with_tries: bool = False) -> dict:
    properties = {
        "task_id": string(),
        "state": string(enum=[str(s) for s in TaskState]),
        "try_number": integer(minimum=0),
        "max_tries": integer(minimum=1),
        "function": string(),
        "function_version": integer(),
        "upstream": array(string()),
        "trigger_rule": string(enum=list(TRIGGER_RULES)),
        "pool": nullable(string()),
        "queued_at": MAYBE_DATE_TIME,
        "started_at": MAYBE_DATE_TIME,
        "finished_at": MAYBE_DATE_TIME,
        "duration": nullable(number()),
        "next_try_at": MAYBE_DATE_TIME,
        "worker": nullable(string()),
        "result": ANY,
        "error": nullable(string()),
    }
    if with_tries:
        properties["tries"] = array(ref("TaskTry"))
    return closed(properties)


def token_properties() -> dict:
    return {
        "id": integer(),
        "name": string(),
        "role": string(enum=list(ROLES)),
        "created_at": DATE_TIME,
        "expires_at": MAYBE_DATE_TIME,
        "revoked_at": MAYBE_DATE_TIME,
    }


def schemas() -> dict:
    """Every component schema, in the order docs/api.md lists them."""
    return {
        "Error": error_schema(),
        **function_schemas(),
        **dag_schemas(),
        **run_schemas(),
        **admin_schemas(),
        **public_schemas(),
    }


def function_schemas() -> dict:
    return {
        "FunctionDeploy": function_deploy_schema(),
        "FunctionVersion": function_version_schema(with_source=False),
        "FunctionVersionWithSource": function_version_schema(with_source=True),
        "Function": closed(
            {
                "name": string(),
                "created_at": DATE_TIME,
                "latest_version": nullable(integer()),
                "versions": array(ref("FunctionVersion")),
            }
        ),
        "FunctionList": closed({"functions": array(ref("FunctionVersion"))}),
    }


def dag_schemas() -> dict:
    return {
        "TaskSpec": task_spec_schema(),
        "DagSpec": dag_spec_schema(dag_id_required=True),
        "DagSpecPut": dag_spec_schema(dag_id_required=False),
        "Dag": obj(
            {
                "dag_id": string(),
                "paused": boolean(),
                "version": integer(minimum=1),
                "spec": ref("DagSpec"),
                "created_at": DATE_TIME,
                "updated_at": DATE_TIME,
                "last_run": nullable(ref("Run")),
                "next_run_at": MAYBE_DATE_TIME,
                "webhook_secret": string(
                    description="only in the response that creates the DAG: shown once"
                ),
            },
            required=(
                "dag_id",
                "paused",
                "version",
                "spec",
                "created_at",
                "updated_at",
                "last_run",
                "next_run_at",
            ),
        ),
        "DagList": closed({"dags": array(ref("Dag"))}),
        "Pause": closed({"paused": boolean()}),
    }


def run_schemas() -> dict:
    run_props = run_schema()["properties"]
    return {
        "Trigger": obj({"conf": ANY, "logical_date": nullable(DATE_TIME)}),
        "Backfill": closed({"start": DATE_TIME, "end": DATE_TIME}),
        "Mark": closed({"state": string(enum=[str(TaskState.SUCCESS), str(TaskState.FAILED)])}),
        "Run": run_schema(),
        "RunPage": closed({"runs": array(ref("Run")), "next_cursor": nullable(integer())}),
        "InvokeResult": obj(
            {**run_props, "result": ANY, "error": nullable(string())},
            required=[k for k in run_props] + ["result", "error"],
        ),
        "BackfillResult": closed({"created": integer(minimum=0), "runs": array(ref("Run"))}),
        "Cleared": closed({"cleared": array(string()), "run": ref("Run")}),
        "TaskInstance": task_instance_schema(),
        "TaskInstanceWithTries": task_instance_schema(with_tries=True),
        "TaskTry": closed(
            {
                "try_number": integer(minimum=1),
                "state": string(),
                "started_at": MAYBE_DATE_TIME,
                "finished_at": MAYBE_DATE_TIME,
                "worker": nullable(string()),
                "error": nullable(string()),
            }
        ),
        "Logs": closed(
            {
                "try_number": integer(minimum=1),
                "state": string(enum=[str(s) for s in TaskState]),
                "text": string(),
                "next_offset": integer(minimum=0),
            }
        ),
    }


def admin_schemas() -> dict:
    """Pools, secrets, tokens and the audit log."""
    return {
        "PoolPut": obj(
            {"slots": integer(minimum=0, maximum=100_000), "description": string()},
            required=("slots",),
        ),
        "Pool": closed({"name": string(), "slots": integer(), "description": string()}),
        "PoolList": closed({"pools": array(ref("Pool"))}),
        "SecretPut": closed(
            {
                "name": string(pattern=secret_store.NAME.pattern, minLength=1, maxLength=100),
                "value": string(
                    minLength=1, description=f"at most {current().max_secret_bytes} bytes"
                ),
            }
        ),
        "Secret": closed({"name": string(), "created_at": DATE_TIME}),
        "SecretList": closed({"secrets": array(ref("Secret"))}),
        "TokenCreate": obj(
            {
                "role": string(enum=list(ROLES)),
                "name": string(maxLength=100, default=""),
                "expires_in_days": nullable(number(exclusiveMinimum=0)),
            },
            required=("role",),
        ),
        "Token": closed(token_properties()),
        "NewToken": closed(
            {**token_properties(), "token": string(description="the token itself: shown once")}
        ),
        "TokenList": closed({"tokens": array(ref("Token"))}),
        "AuditEvent": closed(
            {
                "id": integer(),
                "at": DATE_TIME,
                "actor": string(description='"token 7 (ci)", "BRISA_ADMIN_TOKEN", ...'),
                "action": string(description='the method and route: "POST /api/v1/dags"'),
                "target": string(description="the request path"),
                "status": integer(),
            }
        ),
        "AuditPage": closed(
            {"events": array(ref("AuditEvent")), "next_cursor": nullable(integer())}
        ),
    }


def public_schemas() -> dict:
    """Webhook and callback secrets, webhook deliveries, health checks."""
    return {
        "WebhookSecret": closed({"webhook_secret": string(pattern="^whsec_")}),
        "CallbackSecret": closed({"secret": string()}),
        "HookAccepted": closed(
            {
                "run_id": integer(),
                "status_url": string(),
                "state": string(enum=[str(s) for s in RunState]),
                "duplicate": boolean(),
            }
        ),
        "Health": closed({"status": string(const="ok")}),
        "Ready": closed(
            {
                "status": string(enum=["ok", "unavailable"]),
                "checks": closed(
                    {
                        "database": string(description='"ok" or "down: <error>"'),
                        "queue": string(description='"ok" or "down: <error>"'),
                    }
                ),
            }
        ),
    }


# Paths ----------------------------------------------------------------------------------


def public_paths() -> dict:
    """The routes outside /api/v1 (app/web/hooks.py, app/web/health.py) and this document's:
    none takes a bearer token."""
    return {"/hooks/{dag_id}": {"post": deliver_operation()}, **health_paths(), **docs_paths()}


def deliver_operation() -> dict:
    signature_headers = [
        header_param("X-Hub-Signature-256", "GitHub: sha256=<hex HMAC-SHA256 of the raw body>"),
        header_param("X-GitHub-Event", "GitHub: the event type"),
        header_param("X-GitHub-Delivery", "GitHub: the delivery id (deduplicates)"),
        header_param("webhook-id", "Standard Webhooks: the message id (deduplicates)"),
        header_param("webhook-timestamp", "Standard Webhooks: Unix seconds, within 5 minutes"),
        header_param("webhook-signature", "Standard Webhooks: v1,<base64 HMAC-SHA256>"),
    ]
    accepted = response("Accepted", ref("HookAccepted"))
    deliver = operation(
        "deliverWebhook",
        "A signed delivery starts a run (its body is the conf); no bearer token",
        "webhooks",
        {
            "200": response("A repeated delivery: the first run", ref("HookAccepted")),
            "202": accepted,
        },
        params=[DAG_ID, *signature_headers],
        request=request_body(
            ANY, "Any body; JSON becomes the conf, anything else is text", required=False
        ),
        error_codes=(401, 404, 409, 413),
    )
    deliver["responses"]["401"] = {"$ref": f"#/components/responses/{SIGNATURE_ERROR}"}
    return deliver


def health_paths() -> dict:
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness (touches neither the database nor the queue)",
                "tags": ["health"],
                "security": [],
                "responses": {"200": response("Alive", ref("Health"))},
            },
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: the database and the queue, each named",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": response("Ready", ref("Ready")),
                    "503": response("Not ready", ref("Ready")),
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text format)",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {PROMETHEUS_TYPE.split(";")[0]: {"schema": string()}},
                    },
                    **errors(503),
                },
            },
        },
    }


def docs_paths() -> dict:
    return {
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["docs"],
                "security": [],
                "responses": {
                    "200": response("The OpenAPI 3.1 document", obj({}, additional=True)),
                    **errors(503),
                },
            },
        },
    }


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Brisa",
            "version": "1",
            "description": (
                "Serverless-style HTTP functions wired into DAGs. Every /api/v1 call takes "
                "Authorization: Bearer <token>; errors are always JSON "
                '{"error": {"code", "message", "details"}}.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": name}
            for name in (
                "functions",
                "dags",
                "runs",
                "pools",
                "secrets",
                "tokens",
                "webhooks",
                "health",
                "docs",
            )
        ],
        "paths": {
            **api.paths(),
            **public_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"An API token; roles: {', '.join(ROLES)}",
                }
            },
            "schemas": schemas(),
            "responses": {
                **{
                    f"Error{code}": response(text, ref("Error"))
                    for code, text in ERROR_DESCRIPTIONS.items()
                },
                SIGNATURE_ERROR: response(SIGNATURE_ERROR_DESCRIPTION, ref("Error")),
            },
        },
    }
