"""The building blocks the resource modules describe their OpenAPI paths with: JSON Schema
helpers, parameters, request bodies, responses, and ``operation``, which adds the error
responses every operation shares. app/web/openapi.py assembles the document from them."""

from app.engine.auth import ROLES


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def string(**extra) -> dict:
    return {"type": "string", **extra}


def integer(**extra) -> dict:
    return {"type": "integer", **extra}


def number(**extra) -> dict:
    return {"type": "number", **extra}


def boolean() -> dict:
    return {"type": "boolean"}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def obj(properties: dict, required=(), additional=False, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if additional is not True:
        schema["additionalProperties"] = additional
    return schema


def closed(properties: dict, **extra) -> dict:
    """A response object: every property always present, none other."""
    return obj(properties, required=properties, **extra)


ANY = {"description": "any JSON value"}


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def response(description: str, schema: dict | None = None) -> dict:
    answer = {"description": description}
    if schema is not None:
        answer["content"] = json_content(schema)
    return answer


def request_body(schema: dict, description: str, required: bool = True) -> dict:
    return {"required": required, "description": description, "content": json_content(schema)}


def path_param(name: str, description: str, schema: dict | None = None, example=None) -> dict:
    param = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or string(minLength=1),
    }
    if example is not None:
        param["example"] = example
    return param


def query_param(name: str, description: str, schema: dict) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def header_param(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": string(),
    }


def errors(*codes: int) -> dict:
    return {str(code): {"$ref": f"#/components/responses/Error{code}"} for code in codes}


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: dict,
    role: str | None = None,
    params=(),
    request=None,
    error_codes=(),
) -> dict:
    """One operation. ``role`` None means public (no bearer token); otherwise 401 (and 403
    above the lowest role) are added, and 503 always (the database may be down)."""
    codes = set(error_codes) | {503}
    if role is not None:
        codes.add(401)
        if ROLES.index(role) > 0:
            codes.add(403)
    op = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": {**ok, **errors(*sorted(codes))},
    }
    if role is None:
        op["security"] = []
    else:
        op["description"] = f"Needs the {role} role (roles, lowest first: {', '.join(ROLES)})."
    if params:
        op["parameters"] = list(params)
    if request is not None:
        op["requestBody"] = request
    return op


JSON_BODY_ERRORS = (400, 413, 415, 422)
OPTIONAL_BODY_ERRORS = (400, 413, 415, 422)
NO_CONTENT = {"204": {"description": "Deleted"}}

# Examples name the example functions and DAGs (functions/), as the README does.
DAG_ID = path_param("dag_id", "a DAG's id", example="example_pipeline")
CURSOR = query_param(
    "cursor", "next_cursor of the previous page", integer(minimum=1, maximum=2**62)
)
