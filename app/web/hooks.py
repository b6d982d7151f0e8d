"""POST /hooks/{dag_id}: a signed delivery starts a run. No bearer token: the signature of
the raw body is the credential (app/engine/webhooks.py)."""

from flask import Blueprint, jsonify, request

from app.domain import strict_json
from app.domain.errors import BadRequest, Conflict
from app.engine import dags, runs, webhooks
from app.web.api import common

hooks = Blueprint("hooks", __name__)

USEFUL_HEADERS = ("X-GitHub-Event", "X-GitHub-Delivery", "webhook-id")


@hooks.post("/hooks/<dag_id>")
def deliver(dag_id):
    dag = dags.get(dag_id)
    body = common.body()
    scheme = webhooks.verify(dags.webhook_secret(dag), body, request.headers)
    if dag.paused:
        raise Conflict(f"DAG {dag_id!r} is paused: the delivery was not accepted; retry later")
    delivery = webhooks.delivery_id(scheme, request.headers)
    trigger = {"scheme": scheme, "delivery_id": delivery, "headers": _useful_headers()}
    run, created = runs.trigger(
        dag_id,
        conf=_conf(body),
        run_type="webhook",
        key=f"webhook:{dag.id}:{delivery}" if delivery else None,
        trigger=trigger,
        dag=dag,
    )
    answer = {
        "run_id": run.id,
        "status_url": f"/api/v1/runs/{run.id}",
        "state": run.state,
        "duplicate": not created,
    }
    return jsonify(answer), 202 if created else 200


def _conf(body: bytes):
    """The delivery's JSON body; anything else, strict JSON's NaN and Infinity included, is
    passed on as text, but JSON nested too deep is a 400."""
    try:
        return strict_json.loads(body)
    except strict_json.TooDeep as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def _useful_headers() -> dict:
    return {name: request.headers[name] for name in USEFUL_HEADERS if name in request.headers}
