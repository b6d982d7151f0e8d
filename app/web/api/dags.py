"""/api/v1/dags: create, version, read, pause and delete DAGs, and rotate their webhook
secrets; their routes and their OpenAPI paths. A DAG's runs are in runs.py."""

from flask import Blueprint, jsonify

from app.engine import catalog, dags, runs, serialize
from app.web.api.common import flag_arg, json_body, needs
from app.web.api.openapi_parts import (
    DAG_ID,
    JSON_BODY_ERRORS,
    NO_CONTENT,
    boolean,
    operation,
    path_param,
    query_param,
    ref,
    request_body,
    response,
)

blueprint = Blueprint("dags", __name__)


@blueprint.post("/dags")
@needs("admin")
def create_dag():
    dag, version = dags.create(json_body())
    return jsonify(_with_revealed_secret(dag, serialize.dag(dag, version))), 201


@blueprint.put("/dags/<dag_id>")
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


@blueprint.post("/dags/<dag_id>/webhook-secret")
@needs("admin")
def rotate_webhook_secret(dag_id):
    return jsonify({"webhook_secret": dags.rotate_webhook_secret(dags.get(dag_id))})


@blueprint.get("/dags")
@needs("viewer")
def list_dags():
    last = runs.last_runs()
    items = [
        serialize.dag(dag, version, last.get(dag.id)) for dag, version in dags.current_versions()
    ]
    return jsonify({"dags": items})


@blueprint.get("/dags/<dag_id>")
@needs("viewer")
def get_dag(dag_id):
    dag = dags.get(dag_id)
    return jsonify(serialize.dag(dag, dags.current_version(dag), _last_run(dag)))


def _last_run(dag):
    return runs.last_runs([dag.id]).get(dag.id)


@blueprint.patch("/dags/<dag_id>")
@needs("operator")
def patch_dag(dag_id):
    dag = dags.set_paused(dag_id, json_body())
    return jsonify(serialize.dag(dag, dags.current_version(dag), _last_run(dag)))


@blueprint.delete("/dags/<dag_id>")
@needs("admin")
def delete_dag(dag_id):
    catalog.delete_dag(dag_id, cancel=flag_arg("cancel"))
    return "", 204


# OpenAPI --------------------------------------------------------------------------------

DAG_TO_DELETE = path_param("dag_id", "a DAG's id", example="words")
CANCEL_FIRST = query_param(
    "cancel", "true: cancel the runs in flight and wait for their tries to stop", boolean()
)


def paths() -> dict:
    return {
        "/api/v1/dags": {
            "post": operation(
                "createDag",
                "Create a DAG (409 if it exists); the answer carries its webhook secret",
                "dags",
                {"201": response("Created", ref("Dag"))},
                role="admin",
                request=request_body(ref("DagSpec"), "The DAG spec"),
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
        "/api/v1/dags/{dag_id}": _dag_item(),
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
    }


def _dag_item() -> dict:
    dag_answer = response("The DAG", ref("Dag"))
    return {
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
            request=request_body(
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
            request=request_body(ref("Pause"), "The new paused state"),
            error_codes=(*JSON_BODY_ERRORS, 404),
        ),
        "delete": operation(
            "deleteDag",
            "Delete a DAG with its versions, runs, task instances, tries and logs (its"
            " functions stay); 409 naming its runs in flight, unless cancel=true cancels them"
            " and waits for their tries to stop first",
            "dags",
            NO_CONTENT,
            role="admin",
            params=[DAG_TO_DELETE, CANCEL_FIRST],
            error_codes=(404, 409, 422),
        ),
    }
