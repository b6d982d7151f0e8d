"""/api/v1/tokens: create, list and revoke API tokens; their routes and their OpenAPI
paths."""

from flask import Blueprint, jsonify

from app.domain.errors import Invalid
from app.domain.timeutil import isoformat
from app.engine import auth
from app.store.models import ApiToken
from app.web.api.common import json_body, needs
from app.web.api.openapi_parts import (
    JSON_BODY_ERRORS,
    integer,
    operation,
    path_param,
    ref,
    request_body,
    response,
)

blueprint = Blueprint("tokens", __name__)


def _token_json(row) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": isoformat(row.created_at),
        "expires_at": isoformat(row.expires_at),
        "revoked_at": isoformat(row.revoked_at),
    }


@blueprint.post("/tokens")
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


@blueprint.get("/tokens")
@needs("admin")
def list_tokens():
    return jsonify(
        {"tokens": [_token_json(row) for row in ApiToken.select().order_by(ApiToken.id)]}
    )


@blueprint.delete("/tokens/<int:token_id>")
@needs("admin")
def revoke_token(token_id):
    return jsonify(_token_json(auth.revoke(token_id)))


# OpenAPI --------------------------------------------------------------------------------


def paths() -> dict:
    return {
        "/api/v1/tokens": {
            "post": operation(
                "createToken",
                "Create an API token; the answer shows it, once (only its SHA-256 is kept)",
                "tokens",
                {"201": response("The new token", ref("NewToken"))},
                role="admin",
                request=request_body(
                    ref("TokenCreate"), "Role, and optionally a name and a lifetime"
                ),
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
    }
