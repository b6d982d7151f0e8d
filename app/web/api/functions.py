"""/api/v1/functions: deploy, read, delete and invoke functions; their routes and their
OpenAPI paths."""

import peewee
from flask import Blueprint, current_app, jsonify, request

from app.domain import egress
from app.domain.errors import Invalid
from app.engine import catalog, functions, runs, serialize
from app.store.models import Function, FunctionVersion
from app.store.transitions import RUN_FINISHED
from app.web.api.common import flag_arg, float_arg, json_body, needs
from app.web.api.openapi_parts import (
    ANY,
    JSON_BODY_ERRORS,
    NO_CONTENT,
    OPTIONAL_BODY_ERRORS,
    boolean,
    header_param,
    integer,
    number,
    operation,
    path_param,
    query_param,
    ref,
    request_body,
    response,
    string,
)

blueprint = Blueprint("functions", __name__)

MAX_WAIT_S = 60


@blueprint.post("/functions")
@needs("admin")
def deploy_function():
    upgrade = request.args.get("upgrade", "false").lower() in ("1", "true", "yes")
    version, created = functions.deploy(json_body(), current_app.config["BRISA"], upgrade)
    return jsonify(serialize.function_version(version)), 201 if created else 200


@blueprint.get("/functions")
@needs("viewer")
def list_functions():
    items = sorted(_latest_versions(), key=lambda v: v.function.name)
    return jsonify({"functions": [serialize.function_version(v) for v in items]})


def _latest_versions() -> list[FunctionVersion]:
    """Each function's newest version with its function: one query, one probe of the
    (function, version) index per function."""
    newest = FunctionVersion.alias("newest")
    latest = newest.select(peewee.fn.MAX(newest.version)).where(
        newest.function == FunctionVersion.function
    )
    query = FunctionVersion.select(FunctionVersion, Function).join(Function)
    return list(query.where(FunctionVersion.version == latest))


@blueprint.get("/functions/<name>")
@needs("viewer")
def get_function(name):
    fn = functions.get(name)
    versions = fn.versions.select(FunctionVersion, Function).join(Function)
    return jsonify(serialize.function(fn, list(versions.order_by(FunctionVersion.version.desc()))))


@blueprint.get("/functions/<name>/versions/<int:number>")
@needs("viewer")
def get_function_version(name, number):
    return jsonify(serialize.function_version(functions.get_version(name, number), source=True))


@blueprint.delete("/functions/<name>")
@needs("admin")
def delete_function(name):
    catalog.delete_function(name, cancel=flag_arg("cancel"))
    return "", 204


@blueprint.post("/functions/<name>/invoke")
@needs("operator")
def invoke_function(name):
    wait = float_arg("wait", MAX_WAIT_S)
    callback_url = request.args.get("callback_url") or request.headers.get("X-Callback-Url")
    if callback_url:
        try:
            allow = egress.Allow.parse(current_app.config["BRISA"].egress_allow)
            egress.check_literal(callback_url, allow)
        except egress.Refused as exc:
            raise Invalid([{"field": "callback_url", "message": str(exc)}]) from None
    run = runs.invoke(name, json_body(optional=True), callback_url=callback_url)
    if wait:
        run = runs.wait_until_finished(run.id, wait)
    body = serialize.run(run, runs.task_instances(run))
    body["result"] = body["tasks"][0]["result"]
    body["error"] = body["tasks"][0]["error"]
    return jsonify(body), 200 if run.state in RUN_FINISHED else 202


# OpenAPI --------------------------------------------------------------------------------

FUNCTION_NAME = path_param("name", "a function's name", example="hello")
INVOKE_PARAMS = [
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


def paths() -> dict:
    return {**_function_paths(), **_invoke_paths()}


def _function_paths() -> dict:
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
                params=[
                    query_param(
                        "upgrade",
                        "1, true or yes: resolve the requirements again even if nothing"
                        " changed (a new version when the lock differs)",
                        string(),
                    )
                ],
                request=request_body(ref("FunctionDeploy"), "The function"),
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
                "Delete a function with its versions and its invoke runs (task instances,"
                " tries, logs); 409 while a DAG uses it, or naming the runs using it that are"
                " in flight, unless cancel=true cancels them and waits for their tries first",
                "functions",
                NO_CONTENT,
                role="admin",
                params=[
                    FUNCTION_NAME,
                    query_param(
                        "cancel",
                        "true: cancel the runs in flight and wait for their tries to stop",
                        boolean(),
                    ),
                ],
                error_codes=(404, 409, 422),
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
    }


def _invoke_paths() -> dict:
    return {
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
                params=INVOKE_PARAMS,
                request=request_body(ANY, "The event (the run's conf); optional", required=False),
                error_codes=(*OPTIONAL_BODY_ERRORS, 404),
            ),
        },
    }
