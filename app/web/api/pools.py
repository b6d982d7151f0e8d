"""/api/v1/pools: list, read, create or resize, and delete pools; their routes and their
OpenAPI paths."""

from flask import Blueprint, jsonify

from app.engine import pools
from app.store.models import Pool
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

blueprint = Blueprint("pools", __name__)


def _pool_json(pool) -> dict:
    return {"name": pool.name, "slots": pool.slots, "description": pool.description}


@blueprint.get("/pools")
@needs("viewer")
def list_pools():
    return jsonify({"pools": [_pool_json(p) for p in Pool.select().order_by(Pool.name)]})


@blueprint.get("/pools/<name>")
@needs("viewer")
def get_pool(name):
    return jsonify(_pool_json(pools.get(name)))


@blueprint.put("/pools/<name>")
@needs("admin")
def put_pool(name):
    pool, created = pools.put(name, json_body())
    return jsonify(_pool_json(pool)), 201 if created else 200


@blueprint.delete("/pools/<name>")
@needs("admin")
def delete_pool(name):
    pools.get(name).delete_instance()
    return "", 204


# OpenAPI --------------------------------------------------------------------------------

POOL_NAME = path_param("name", "a pool's name")


def paths() -> dict:
    pool = response("The pool", ref("Pool"))
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
                request=request_body(ref("PoolPut"), "Slots and description"),
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
    }
