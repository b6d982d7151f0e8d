"""The REST API under /api/v1: one module per resource, each with its blueprint (routes that
parse the request, call the core and render JSON) and its OpenAPI paths beside them.

``api`` (common.py) is the blueprint the app registers; the resource blueprints are nested in
it here, so they share its /api/v1 prefix, authentication and audit hooks. ``paths()`` gives
app/web/openapi.py every resource's paths, in the order of RESOURCES.
"""

from app.web.api import audit, callbacks, dags, functions, pools, runs, secret_store, tokens
from app.web.api.common import api

RESOURCES = (functions, dags, runs, pools, secret_store, callbacks, tokens, audit)

for _resource in RESOURCES:
    api.register_blueprint(_resource.blueprint)


def paths() -> dict:
    """The OpenAPI path items of every resource under /api/v1."""
    return {path: item for resource in RESOURCES for path, item in resource.paths().items()}


__all__ = ["RESOURCES", "api", "paths"]
