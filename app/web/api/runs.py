"""/api/v1/runs and a DAG's runs (/api/v1/dags/{dag_id}/runs, /backfill): trigger, list,
read, cancel and rerun runs; read, mark and clear their task instances and read their logs.
Their routes and their OpenAPI paths."""

from flask import Blueprint, jsonify, request

from app.domain.errors import Invalid
from app.engine import dags, runs, serialize
from app.store.models import TaskTry
from app.web.api.common import MAX_PAGE, int_arg, json_body, needs
from app.web.api.openapi_parts import (
    CURSOR,
    DAG_ID,
    JSON_BODY_ERRORS,
    OPTIONAL_BODY_ERRORS,
    integer,
    operation,
    path_param,
    query_param,
    ref,
    request_body,
    response,
    string,
)

blueprint = Blueprint("runs", __name__)


@blueprint.post("/dags/<dag_id>/runs")
@needs("operator")
def trigger_run(dag_id):
    body = json_body(optional=True) or {}
    if not isinstance(body, dict) or set(body) - {"conf", "logical_date"}:
        raise Invalid(
            [{"field": "", "message": 'the body may hold only "conf" and "logical_date"'}]
        )
    logical_date = runs.parse_date(body.get("logical_date"), "logical_date")
    run, _ = runs.trigger(dag_id, body.get("conf"), logical_date=logical_date)
    return jsonify(_run_with_tasks(run.id)), 201


@blueprint.post("/dags/<dag_id>/backfill")
@needs("operator")
def backfill(dag_id):
    body = json_body()
    if not isinstance(body, dict) or set(body) != {"start", "end"}:
        raise Invalid([{"field": "", "message": 'the body must be {"start": ..., "end": ...}'}])
    start = runs.parse_date(body["start"], "start")
    end = runs.parse_date(body["end"], "end")
    created = runs.backfill(dag_id, start, end)
    return jsonify({"created": len(created), "runs": [serialize.run(r) for r in created]}), 201


@blueprint.get("/dags/<dag_id>/runs")
@needs("viewer")
def list_runs(dag_id):
    dag = dags.get(dag_id)
    limit = int_arg("limit", 25, 1, MAX_PAGE)
    cursor = int_arg("cursor", None, 1, 2**62)
    page = runs.list_for_dag(dag, request.args.get("state"), limit, cursor)
    next_cursor = page[-1].id if len(page) == limit else None
    return jsonify({"runs": [serialize.run(r) for r in page], "next_cursor": next_cursor})


@blueprint.get("/runs/<int:run_id>")
@needs("viewer")
def get_run(run_id):
    return jsonify(_run_with_tasks(run_id))


def _run_with_tasks(run_id: int) -> dict:
    """The run as the API shows it, with its task instances: two queries, however many."""
    run = runs.shown(run_id)
    return serialize.run(run, runs.task_instances(run))


@blueprint.post("/runs/<int:run_id>/cancel")
@needs("operator")
def cancel_run(run_id):
    runs.cancel(run_id)
    return jsonify(_run_with_tasks(run_id))


@blueprint.post("/runs/<int:run_id>/rerun")
@needs("operator")
def rerun_failed(run_id):
    cleared = runs.rerun_failed(run_id)
    return jsonify({"cleared": cleared, "run": _run_with_tasks(run_id)})


@blueprint.post("/runs/<int:run_id>/tasks/<task_id>/mark")
@needs("operator")
def mark_task(run_id, task_id):
    body = json_body()
    if not isinstance(body, dict) or set(body) != {"state"}:
        raise Invalid([{"field": "", "message": 'the body must be {"state": "success"|"failed"}'}])
    return jsonify(serialize.task_instance(runs.mark(run_id, task_id, body["state"])))


@blueprint.get("/runs/<int:run_id>/tasks/<task_id>")
@needs("viewer")
def get_task_instance(run_id, task_id):
    ti = runs.task_instance(run_id, task_id)
    body = serialize.task_instance(ti)
    body["tries"] = [serialize.task_try(t) for t in ti.tries.order_by(TaskTry.try_number)]
    return jsonify(body)


@blueprint.get("/runs/<int:run_id>/tasks/<task_id>/logs")
@needs("viewer")
def get_logs(run_id, task_id):
    ti = runs.task_instance(run_id, task_id)
    try_number = int_arg("try", max(ti.try_number, 1), 1, 10_000)
    offset = int_arg("offset", 0, 0, 2**31)
    text, next_offset = runs.logs(ti, try_number, offset)
    body = {"try_number": try_number, "state": ti.state, "text": text, "next_offset": next_offset}
    return jsonify(body)


@blueprint.post("/runs/<int:run_id>/tasks/<task_id>/clear")
@needs("operator")
def clear_task(run_id, task_id):
    downstream = request.args.get("downstream", "false").lower() in ("1", "true", "yes")
    cleared = runs.clear(run_id, task_id, downstream)
    return jsonify({"cleared": cleared, "run": _run_with_tasks(run_id)})


# OpenAPI --------------------------------------------------------------------------------

RUN_ID = path_param("run_id", "a run's id", integer(minimum=0), example=1)
TASK_ID = path_param("task_id", "a task's id within the run", example="hello")


def paths() -> dict:
    return {**_dag_run_paths(), **_run_paths(), **_task_paths()}


def _dag_run_paths() -> dict:
    return {
        "/api/v1/dags/{dag_id}/runs": {
            "post": operation(
                "triggerRun",
                "Trigger a run of the DAG's current version",
                "runs",
                {"201": response("The run", ref("Run"))},
                role="operator",
                params=[DAG_ID],
                request=request_body(
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
                    CURSOR,
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
                request=request_body(ref("Backfill"), "The interval"),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
        },
    }


def _run_paths() -> dict:
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
                {"200": response("The tasks cleared and the run", ref("Cleared"))},
                role="operator",
                params=[RUN_ID],
                error_codes=(404, 409),
            ),
        },
    }


def _task_paths() -> dict:
    return {
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
                {"200": response("The tasks cleared and the run", ref("Cleared"))},
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
                request=request_body(ref("Mark"), "The state"),
                error_codes=(*JSON_BODY_ERRORS, 404),
            ),
        },
    }
