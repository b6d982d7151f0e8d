"""/api/v1/callbacks/secret: the secret Brisa signs async-invocation callbacks with
(app/engine/callbacks.py sends them); its route and its OpenAPI path."""

from flask import Blueprint, current_app, jsonify

from app.engine import webhooks
from app.web.api.common import needs
from app.web.api.openapi_parts import operation, ref, response

blueprint = Blueprint("callbacks", __name__)


@blueprint.get("/callbacks/secret")
@needs("admin")
def callback_secret():
    """The secret Brisa signs async-invocation callbacks with (Standard Webhooks)."""
    secret = webhooks.callback_secret(current_app.config["BRISA"].secret_key)
    return jsonify({"secret": secret})


# OpenAPI --------------------------------------------------------------------------------


def paths() -> dict:
    return {
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
