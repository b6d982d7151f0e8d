"""/api/v1/audit: the audit log of accepted changes (common.py records them), newest first;
its route and its OpenAPI path."""

from flask import Blueprint, jsonify

from app.domain.timeutil import isoformat
from app.engine import audit
from app.web.api.common import MAX_PAGE, int_arg, needs
from app.web.api.openapi_parts import CURSOR, integer, operation, query_param, ref, response

blueprint = Blueprint("audit", __name__)


@blueprint.get("/audit")
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


# OpenAPI --------------------------------------------------------------------------------


def paths() -> dict:
    return {
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
                    CURSOR,
                ],
                error_codes=(422,),
            ),
        },
    }
