"""GET /api/v1/openapi.json: the OpenAPI 3.1 contract of every route under /api/v1, /hooks,
/healthz, /readyz and /metrics. No token needed to read it.

The document is plain Python data built from small helpers; the lists it names (runtimes,
roles, trigger rules, states, limits) come from the modules that enforce them.
"""

from flask import Blueprint, jsonify

from app.domain.dagspec import _ID, PRESETS
from app.domain.trigger_rules import TRIGGER_RULES
from app.engine import functions
from app.engine import secret_store as secrets
from app.engine.auth import ROLES
from app.store.transitions import RunState, TaskState
from app.web.api import MAX_PAGE, MAX_WAIT_S
from app.web.health import PROMETHEUS_TYPE

docs = Blueprint("docs", __name__)

OPENAPI_PATH = "/api/v1/openapi.json"


@docs.get(OPENAPI_PATH)
def openapi_document():
    return jsonify(document())


# Helpers --------------------------------------------------------------------------------


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def string(**extra) -> dict:
    return {"type": "string", **extra}


def integer(**extra) -> dict:
    return {"type": "integer", **extra}


def number(**extra) -> dict:
    return {"type": "number", **extra}


def boolean() -> dict:
    return {"type": "boolean"}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def obj(properties: dict, required=(), additional=False, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if additional is not True:
        schema["additionalProperties"] = additional
    return schema


def closed(properties: dict, **extra) -> dict:
    """A response object: every property always present, none other."""
    return obj(properties, required=properties, **extra)


DATE_TIME = string(format="date-time")
MAYBE_DATE_TIME = nullable(DATE_TIME)
ANY = {"description": "any JSON value"}
ID_PATTERN = f"^{_ID.pattern}$"
NAME = string(pattern=functions.NAME_PATTERN.pattern, minLength=1, maxLength=100)


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def response(description: str, schema: dict | None = None) -> dict:
    answer = {"description": description}
    if schema is not None:
        answer["content"] = json_content(schema)
    return answer


def body(schema: dict, description: str, required: bool = True) -> dict:
    return {"required": required, "description": description, "content": json_content(schema)}


def path_param(name: str, description: str, schema: dict | None = None, example=None) -> dict:
    param = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or string(minLength=1),
    }
    if example is not None:
        param["example"] = example
    return param


def query_param(name: str, description: str, schema: dict) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def header_param(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": string(),
    }


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


def errors(*codes: int) -> dict:
    return {str(code): {"$ref": f"#/components/responses/Error{code}"} for code in codes}


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: dict,
    role: str | None = None,
    params=(),
    request=None,
    error_codes=(),
) -> dict:
    """One operation. ``role`` None means public (no bearer token); otherwise 401 (and 403
    above the lowest role) are added, and 503 always (the database may be down)."""
    codes = set(error_codes) | {503}
    if role is not None:
        codes.add(401)
        if ROLES.index(role) > 0:
            codes.add(403)
    op = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {**ok, **errors(*sorted(codes))},
    }
    if role is None:
        op["security"] = []
    else:
        op["description"] = f"Needs the {role} role (roles, lowest first: {', '.join(ROLES)})."
    if params:
        op["parameters"] = list(params)
    if request is not None:
        op["requestBody"] = request
    return op


JSON_BODY_ERRORS = (400, 413, 415, 422)
OPTIONAL_BODY_ERRORS = (400, 413, 415, 422)


# Schemas --------------------------------------------------------------------------------


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
                maxLength=functions.MAX_SOURCE_BYTES,
                description="Python source with the handler, or (other runtimes) a JSON spec",
            ),
            "handler": string(default="handler", description="a Python identifier"),
            "runtime": string(enum=list(functions.RUNTIMES), default="python"),
            "timeout": number(exclusiveMinimum=0, maximum=functions.MAX_TIMEOUT_S),
            "memory_mb": integer(minimum=64, maximum=65536),
            "env": nullable(obj({}, additional=string())),
            "secrets": array(NAME, uniqueItems=True),
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
        "created_at": DATE_TIME,
    }
    if with_source:
        properties["source"] = string()
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
    run_props = run_schema()["properties"]
    return {
        "Error": error_schema(),
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
        "PoolPut": obj(
            {"slots": integer(minimum=0, maximum=100_000), "description": string()},
            required=("slots",),
        ),
        "Pool": closed({"name": string(), "slots": integer(), "description": string()}),
        "PoolList": closed({"pools": array(ref("Pool"))}),
        "SecretPut": closed(
            {
                "name": string(pattern=secrets.NAME.pattern, minLength=1, maxLength=100),
                "value": string(
                    minLength=1, description=f"at most {secrets.MAX_VALUE_BYTES} bytes"
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

# Examples name the example functions and DAGs (functions/), as the README does.
FUNCTION_NAME = path_param("name", "a function's name", example="hello")
DAG_ID = path_param("dag_id", "a DAG's id", example="example_pipeline")
DAG_TO_DELETE = path_param("dag_id", "a DAG's id", example="words")
RUN_ID = path_param("run_id", "a run's id", integer(minimum=0), example=1)
TASK_ID = path_param("task_id", "a task's id within the run", example="hello")
POOL_NAME = path_param("name", "a pool's name")
SECRET_NAME = path_param("name", "a secret's name")
NO_CONTENT = {"204": {"description": "Deleted"}}


def function_paths() -> dict:
    invoke_params = [
        FUNCTION_NAME,
        query_param(
            "wait",
            f"seconds (0 to {MAX_WAIT_S}) to wait for the result before answering 202",
            number(minimum=0, maximum=MAX_WAIT_S),
        ),
        query_param(
            "callback_url", "POST the outcome here (http or https) when the run ends", string()
        ),
        header_param("X-Callback-Url", "the same as callback_url"),
    ]
    return {
        "/api/v1/functions": {
            "post": operation(
                "deployFunction",
                "Deploy a function: 201 a new version, 200 identical to the latest",
                "functions",
                {
                    "200": response("Unchanged: the latest version", ref("FunctionVersion")),
                    "201": response("A new version", ref("FunctionVersion")),
                },
                role="admin",
                request=body(ref("FunctionDeploy"), "The function"),
                error_codes=(*JSON_BODY_ERRORS, 409),
            ),
            "get": operation(
                "listFunctions",
                "Every function's latest version",
                "functions",
                {"200": response("Functions", ref("FunctionList"))},
                role="viewer",
            ),
        },
        "/api/v1/functions/{name}": {
            "get": operation(
                "getFunction",
                "A function with its versions, newest first",
                "functions",
                {"200": response("The function", ref("Function"))},
                role="viewer",
                params=[FUNCTION_NAME],
                error_codes=(404,),
            ),
            "delete": operation(
                "deleteFunction",
                "Delete a function; 409 while a DAG uses it",
                "functions",
                NO_CONTENT,
                role="admin",
                params=[FUNCTION_NAME],
                error_codes=(404, 409),
            ),
        },
        "/api/v1/functions/{name}/versions/{number}": {
            "get": operation(
                "getFunctionVersion",
                "One version of a function, with its source",
                "functions",
                {"200": response("The version", ref("FunctionVersionWithSource"))},
                role="viewer",
                params=[FUNCTION_NAME, path_param("number", "a version", integer(minimum=0))],
                error_codes=(404,),
            ),
        },
        "/api/v1/functions/{name}/invoke": {
            "post": operation(
                "invokeFunction",
                "Run the function now with the body as conf",
                "functions",
                {
                    "200": response("The run finished within wait", ref("InvokeResult")),
                    "202": response("The run is still going: poll its url", ref("InvokeResult")),
                },
                role="operator",
                params=invoke_params,
                request=body(ANY, "The event (the run's conf); optional", required=False),
                error_codes=(*OPTIONAL_BODY_ERRORS, 404),
            ),
        },
    }


def dag_paths() -> dict:
    dag_answer = response("The DAG", ref("Dag"))
    return {
        "/api/v1/dags": {
            "post": operation(
                "createDag",
                "Create a DAG (409 if it exists); the answer carries its webhook secret",
                "dags",
                {"201": response("Created", ref("Dag"))},
                role="admin",
                request=body(ref("DagSpec"), "The DAG spec"),
                error_codes=(*JSON_BODY_ERRORS, 409),
            ),
            "get": operation(
                "listDags",
                "Every DAG with its last run",
                "dags",
                {"200": response("DAGs", ref("DagList"))},
                role="viewer",
            ),
        },
        "/api/v1/dags/{dag_id}": {
            "put": operation(
                "putDag",
                "Create a DAG or add a version: 201 changed, 200 identical",
                "dags",
                {
                    "200": response("Unchanged", ref("Dag")),
                    "201": response("Created or changed", ref("Dag")),
                },
                role="admin",
                params=[DAG_ID],
                request=body(
                    ref("DagSpecPut"), "The DAG spec; dag_id, if given, must match the URL"
                ),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
            "get": operation(
                "getDag",
                "A DAG with its last run",
                "dags",
                {"200": dag_answer},
                role="viewer",
                params=[DAG_ID],
                error_codes=(404,),
            ),
            "patch": operation(
                "pauseDag",
                "Pause or unpause a DAG",
                "dags",
                {"200": dag_answer},
                role="operator",
                params=[DAG_ID],
                request=body(ref("Pause"), "The new paused state"),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
            "delete": operation(
                "deleteDag",
                "Delete a DAG with its versions, runs and logs",
                "dags",
                NO_CONTENT,
                role="admin",
                params=[DAG_TO_DELETE],
                error_codes=(404,),
            ),
        },
        "/api/v1/dags/{dag_id}/webhook-secret": {
            "post": operation(
                "rotateWebhookSecret",
                "Rotate the DAG's webhook secret and show the new one (once)",
                "dags",
                {"200": response("The new secret", ref("WebhookSecret"))},
                role="admin",
                params=[DAG_ID],
                error_codes=(404,),
            ),
        },
        "/api/v1/dags/{dag_id}/runs": {
            "post": operation(
                "triggerRun",
                "Trigger a run of the DAG's current version",
                "runs",
                {"201": response("The run", ref("Run"))},
                role="operator",
                params=[DAG_ID],
                request=body(
                    ref("Trigger"), "conf and logical_date, both optional", required=False
                ),
                error_codes=(*OPTIONAL_BODY_ERRORS, 404, 409),
            ),
            "get": operation(
                "listRuns",
                "The DAG's runs, newest first; next_cursor pages",
                "runs",
                {"200": response("A page of runs", ref("RunPage"))},
                role="viewer",
                params=[
                    DAG_ID,
                    query_param("state", "only runs in this state", string()),
                    query_param(
                        "limit", "page size", integer(minimum=1, maximum=MAX_PAGE, default=25)
                    ),
                    query_param(
                        "cursor",
                        "next_cursor of the previous page",
                        integer(minimum=1, maximum=2**62),
                    ),
                ],
                error_codes=(404, 422),
            ),
        },
        "/api/v1/dags/{dag_id}/backfill": {
            "post": operation(
                "backfill",
                "A run for every time the schedule fell due in [start, end]",
                "runs",
                {"201": response("The runs created", ref("BackfillResult"))},
                role="operator",
                params=[DAG_ID],
                request=body(ref("Backfill"), "The interval"),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
        },
    }


def run_paths() -> dict:
    cleared = response("The tasks cleared and the run", ref("Cleared"))
    return {
        "/api/v1/runs/{run_id}": {
            "get": operation(
                "getRun",
                "A run with its task instances",
                "runs",
                {"200": response("The run", ref("Run"))},
                role="viewer",
                params=[RUN_ID],
                error_codes=(404,),
            ),
        },
        "/api/v1/runs/{run_id}/cancel": {
            "post": operation(
                "cancelRun",
                "Cancel a queued or running run; running tries are killed",
                "runs",
                {"200": response("The run", ref("Run"))},
                role="operator",
                params=[RUN_ID],
                error_codes=(404, 409),
            ),
        },
        "/api/v1/runs/{run_id}/rerun": {
            "post": operation(
                "rerunFailed",
                "Clear the failed, upstream_failed and cancelled tasks so they run again",
                "runs",
                {"200": cleared},
                role="operator",
                params=[RUN_ID],
                error_codes=(404, 409),
            ),
        },
        "/api/v1/runs/{run_id}/tasks/{task_id}": {
            "get": operation(
                "getTaskInstance",
                "A task instance with its result, error and tries",
                "runs",
                {"200": response("The task instance", ref("TaskInstanceWithTries"))},
                role="viewer",
                params=[RUN_ID, TASK_ID],
                error_codes=(404,),
            ),
        },
        "/api/v1/runs/{run_id}/tasks/{task_id}/logs": {
            "get": operation(
                "getTaskLogs",
                "The log of one try, from chunk offset on (tail it with next_offset)",
                "runs",
                {"200": response("The log", ref("Logs"))},
                role="viewer",
                params=[
                    RUN_ID,
                    TASK_ID,
                    query_param(
                        "try", "the try (default: the latest)", integer(minimum=1, maximum=10_000)
                    ),
                    query_param("offset", "the first chunk", integer(minimum=0, maximum=2**31)),
                ],
                error_codes=(404, 422),
            ),
        },
        "/api/v1/runs/{run_id}/tasks/{task_id}/clear": {
            "post": operation(
                "clearTask",
                "Rerun a finished task (and, with downstream, everything after it)",
                "runs",
                {"200": cleared},
                role="operator",
                params=[
                    RUN_ID,
                    TASK_ID,
                    query_param("downstream", "1, true or yes: clear downstream too", string()),
                ],
                error_codes=(404, 409),
            ),
        },
        "/api/v1/runs/{run_id}/tasks/{task_id}/mark": {
            "post": operation(
                "markTask",
                "Mark a task instance success or failed; successors and the run follow",
                "runs",
                {"200": response("The task instance", ref("TaskInstance"))},
                role="operator",
                params=[RUN_ID, TASK_ID],
                request=body(ref("Mark"), "The state"),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
        },
    }


def pool_secret_paths() -> dict:
    pool = response("The pool", ref("Pool"))
    secret = response("The secret (never its value)", ref("Secret"))
    return {
        "/api/v1/pools": {
            "get": operation(
                "listPools",
                "Every pool",
                "pools",
                {"200": response("Pools", ref("PoolList"))},
                role="viewer",
            ),
        },
        "/api/v1/pools/{name}": {
            "get": operation(
                "getPool",
                "A pool",
                "pools",
                {"200": pool},
                role="viewer",
                params=[POOL_NAME],
                error_codes=(404,),
            ),
            "put": operation(
                "putPool",
                "Create (201) or resize (200) a pool",
                "pools",
                {"200": pool, "201": response("Created", ref("Pool"))},
                role="admin",
                params=[POOL_NAME],
                request=body(ref("PoolPut"), "Slots and description"),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
            "delete": operation(
                "deletePool",
                "Delete a pool",
                "pools",
                NO_CONTENT,
                role="admin",
                params=[POOL_NAME],
                error_codes=(404,),
            ),
        },
        "/api/v1/secrets": {
            "post": operation(
                "putSecret",
                "Create (201) or replace (200) a secret",
                "secrets",
                {"200": secret, "201": response("Created", ref("Secret"))},
                role="admin",
                request=body(ref("SecretPut"), "Name and value"),
                error_codes=JSON_BODY_ERRORS,
            ),
            "get": operation(
                "listSecrets",
                "Secret names",
                "secrets",
                {"200": response("Secrets", ref("SecretList"))},
                role="admin",
            ),
        },
        "/api/v1/secrets/{name}": {
            "get": operation(
                "getSecret",
                "A secret's name and creation time",
                "secrets",
                {"200": secret},
                role="admin",
                params=[SECRET_NAME],
                error_codes=(404,),
            ),
            "delete": operation(
                "deleteSecret",
                "Delete a secret",
                "secrets",
                NO_CONTENT,
                role="admin",
                params=[SECRET_NAME],
                error_codes=(404,),
            ),
        },
        "/api/v1/callbacks/secret": {
            "get": operation(
                "getCallbackSecret",
                "The secret async-invocation callbacks are signed with (Standard Webhooks)",
                "secrets",
                {"200": response("The secret", ref("CallbackSecret"))},
                role="admin",
            ),
        },
    }


def token_audit_paths() -> dict:
    return {
        "/api/v1/tokens": {
            "post": operation(
                "createToken",
                "Create an API token; the answer shows it, once (only its SHA-256 is kept)",
                "tokens",
                {"201": response("The new token", ref("NewToken"))},
                role="admin",
                request=body(ref("TokenCreate"), "Role, and optionally a name and a lifetime"),
                error_codes=JSON_BODY_ERRORS,
            ),
            "get": operation(
                "listTokens",
                "Every token, without its secret",
                "tokens",
                {"200": response("Tokens", ref("TokenList"))},
                role="admin",
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": operation(
                "revokeToken",
                "Revoke a token (again: no change)",
                "tokens",
                {"200": response("The revoked token", ref("Token"))},
                role="admin",
                params=[path_param("token_id", "a token's id", integer(minimum=0))],
                error_codes=(404,),
            ),
        },
        "/api/v1/audit": {
            "get": operation(
                "listAuditEvents",
                "Accepted changes (POST, PUT, PATCH, DELETE under 400), newest first",
                "tokens",
                {"200": response("A page of events", ref("AuditPage"))},
                role="admin",
                params=[
                    query_param(
                        "limit", "page size", integer(minimum=1, maximum=MAX_PAGE, default=50)
                    ),
                    query_param(
                        "cursor",
                        "next_cursor of the previous page",
                        integer(minimum=1, maximum=2**62),
                    ),
                ],
                error_codes=(422,),
            ),
        },
    }


def public_paths() -> dict:
    signature_headers = [
        header_param("X-Hub-Signature-256", "GitHub: sha256=<hex HMAC-SHA256 of the raw body>"),
        header_param("X-GitHub-Event", "GitHub: the event type"),
        header_param("X-GitHub-Delivery", "GitHub: the delivery id (deduplicates)"),
        header_param("webhook-id", "Standard Webhooks: the message id (deduplicates)"),
        header_param("webhook-timestamp", "Standard Webhooks: Unix seconds, within 5 minutes"),
        header_param("webhook-signature", "Standard Webhooks: v1,<base64 HMAC-SHA256>"),
        header_param("Idempotency-Key", "a delivery id for other senders"),
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
        request=body(ANY, "Any body; JSON becomes the conf, anything else is text", required=False),
        error_codes=(401, 404, 409, 413),
    )
    deliver["responses"]["401"] = {"$ref": f"#/components/responses/{SIGNATURE_ERROR}"}
    return {
        "/hooks/{dag_id}": {"post": deliver},
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
            **function_paths(),
            **dag_paths(),
            **run_paths(),
            **pool_secret_paths(),
            **token_audit_paths(),
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
