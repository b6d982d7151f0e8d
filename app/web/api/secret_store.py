"""/api/v1/secrets: create or replace, list, read (never the value) and delete secrets; their
routes and their OpenAPI paths. Named like app/engine/secret_store.py, which it fronts, so as
not to shadow the standard library's ``secrets``."""

from flask import Blueprint, jsonify

from app.domain.timeutil import isoformat
from app.engine import secret_store
from app.store.models import Secret
from app.web.api.common import json_body, needs
from app.web.api.openapi_parts import (
    JSON_BODY_ERRORS,
    NO_CONTENT,
    operation,
    path_param,
    ref,
    request_body,
    response,
)

blueprint = Blueprint("secrets", __name__)


def _secret_json(secret) -> dict:
    return {"name": secret.name, "created_at": isoformat(secret.created_at)}


@blueprint.post("/secrets")
@needs("admin")
def put_secret():
    secret, created = secret_store.put(json_body())
    return jsonify(_secret_json(secret)), 201 if created else 200


@blueprint.get("/secrets")
@needs("admin")
def list_secrets():
    rows = Secret.select().order_by(Secret.name)
    return jsonify({"secrets": [_secret_json(row) for row in rows]})


@blueprint.get("/secrets/<name>")
@needs("admin")
def get_secret(name):
    return jsonify(_secret_json(secret_store.get(name)))


@blueprint.delete("/secrets/<name>")
@needs("admin")
def delete_secret(name):
    secret_store.get(name).delete_instance()
    return "", 204


# OpenAPI --------------------------------------------------------------------------------

SECRET_NAME = path_param("name", "a secret's name")


def paths() -> dict:
    secret = response("The secret (never its value)", ref("Secret"))
    return {
        "/api/v1/secrets": {
            "post": operation(
                "putSecret",
                "Create (201) or replace (200) a secret",
                "secrets",
                {"200": secret, "201": response("Created", ref("Secret"))},
                role="admin",
                request=request_body(ref("SecretPut"), "Name and value"),
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
    }
