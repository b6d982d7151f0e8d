"""The OpenAPI document at /api/v1/openapi.json: valid OpenAPI 3.1, every route of the app in
it and nothing else, each /api/v1 resource module describing exactly its own routes, and real
responses matching what it says."""

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from app.web import api
from tests.conftest import deploy_examples

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
PUBLIC_PREFIXES = ("/hooks/", "/healthz", "/readyz", "/metrics", "/api/v1/openapi.json")


def app_routes(flask_app, endpoint_prefix: str = "") -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every route whose endpoint starts with the prefix, but static
    files and the UI."""
    routes = set()
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("ui."):
            continue
        if not rule.endpoint.startswith(endpoint_prefix):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def documented_routes(doc) -> set[tuple[str, str]]:
    return path_methods(doc["paths"])


def path_methods(paths: dict) -> set[tuple[str, str]]:
    return {
        (path, method) for path, item in paths.items() for method in item if method in HTTP_METHODS
    }


@pytest.fixture
def doc(client):
    response = client.get("/api/v1/openapi.json")  # no token
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_document_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    Draft202012Validator.check_schema({"$defs": doc["components"]["schemas"]})


def test_every_route_is_documented_and_every_documented_route_exists(client, doc):
    in_app = app_routes(client.application)
    in_doc = documented_routes(doc)
    assert in_app - in_doc == set(), "routes missing from the document"
    assert in_doc - in_app == set(), "documented routes the app does not have"
    assert len(in_doc) == len(in_app) >= 40


def test_each_resource_module_documents_exactly_its_own_routes(client):
    """A resource module's paths() and its blueprint's routes sit side by side: they must
    agree, and no two modules may describe the same path (the merge would drop one)."""
    for resource in api.RESOURCES:
        routes = app_routes(client.application, f"api.{resource.blueprint.name}.")
        assert routes, resource.__name__
        assert routes == path_methods(resource.paths()), resource.__name__
    assert sum(len(resource.paths()) for resource in api.RESOURCES) == len(api.paths())


def test_security_and_errors(doc):
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["security"] == [{"bearerAuth": []}]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            public = path.startswith(PUBLIC_PREFIXES)
            assert (op.get("security") == []) is public, (method, path)
            assert ("401" in op["responses"]) is (not public or path.startswith("/hooks/"))
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")) and path != "/readyz":
                    assert answer["$ref"].startswith("#/components/responses/Error"), (path, status)
    for answer in doc["components"]["responses"].values():
        assert answer["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def check(doc, path: str, method: str, response) -> None:
    """The response's status is documented for the operation and its body matches."""
    answers = doc["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in answers, f"{method.upper()} {path}: undocumented {status}"
    answer = answers[status]
    if "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    if "content" not in answer:
        assert response.data == b""
        return
    schema = answer["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    problems = [e.message for e in validator.iter_errors(response.get_json())]
    assert problems == [], f"{method.upper()} {path} {status}: {problems}"


def test_real_responses_match_the_document(client, admin, doc, consumer):
    deploy_examples(client, admin)
    calls = [
        ("get", "/api/v1/functions", "/api/v1/functions", None),
        ("get", "/api/v1/functions/{name}", "/api/v1/functions/hello", None),
        (
            "get",
            "/api/v1/functions/{name}/versions/{number}",
            "/api/v1/functions/hello/versions/1",
            None,
        ),
        ("get", "/api/v1/functions/{name}", "/api/v1/functions/nope", None),
        ("get", "/api/v1/dags", "/api/v1/dags", None),
        ("get", "/api/v1/dags/{dag_id}", "/api/v1/dags/example_pipeline", None),
        ("patch", "/api/v1/dags/{dag_id}", "/api/v1/dags/example_pipeline", {"paused": 1}),
        ("post", "/api/v1/dags", "/api/v1/dags", {"dag_id": "x", "tasks": []}),
        ("post", "/api/v1/functions/{name}/invoke", "/api/v1/functions/hello/invoke?wait=10", {}),
        ("put", "/api/v1/pools/{name}", "/api/v1/pools/p", {"slots": 2}),
        ("get", "/api/v1/pools", "/api/v1/pools", None),
        ("post", "/api/v1/secrets", "/api/v1/secrets", {"name": "s", "value": "v"}),
        ("get", "/api/v1/secrets/{name}", "/api/v1/secrets/s", None),
        ("get", "/api/v1/callbacks/secret", "/api/v1/callbacks/secret", None),
        ("post", "/api/v1/dags/{dag_id}/runs", "/api/v1/dags/example_pipeline/runs", {"conf": {}}),
        ("get", "/api/v1/dags/{dag_id}/runs", "/api/v1/dags/example_pipeline/runs?limit=1", None),
        ("get", "/api/v1/runs/{run_id}", "/api/v1/runs/1", None),
        ("get", "/api/v1/runs/{run_id}/tasks/{task_id}", "/api/v1/runs/1/tasks/hello", None),
        (
            "get",
            "/api/v1/runs/{run_id}/tasks/{task_id}/logs",
            "/api/v1/runs/1/tasks/hello/logs",
            None,
        ),
        (
            "post",
            "/api/v1/runs/{run_id}/tasks/{task_id}/mark",
            "/api/v1/runs/1/tasks/hello/mark",
            {"state": "failed"},
        ),
        ("post", "/api/v1/runs/{run_id}/rerun", "/api/v1/runs/1/rerun", None),
        ("post", "/api/v1/runs/{run_id}/cancel", "/api/v1/runs/999/cancel", None),
        (
            "post",
            "/api/v1/dags/{dag_id}/webhook-secret",
            "/api/v1/dags/example_failure/webhook-secret",
            None,
        ),
        ("post", "/hooks/{dag_id}", "/hooks/example_failure", {"unsigned": True}),
        ("delete", "/api/v1/pools/{name}", "/api/v1/pools/p", None),
        ("get", "/healthz", "/healthz", None),
        ("get", "/readyz", "/readyz", None),
    ]
    calls += [
        ("post", "/api/v1/tokens", "/api/v1/tokens", {"role": "viewer", "name": "ci"}),
        ("post", "/api/v1/tokens", "/api/v1/tokens", {"role": "nobody"}),
        ("get", "/api/v1/tokens", "/api/v1/tokens", None),
        ("delete", "/api/v1/tokens/{token_id}", "/api/v1/tokens/1", None),
        ("delete", "/api/v1/tokens/{token_id}", "/api/v1/tokens/99", None),
        ("get", "/api/v1/audit", "/api/v1/audit?limit=2", None),
        ("get", "/api/v1/audit", "/api/v1/audit?limit=0", None),
    ]
    for method, path, url, body in calls:
        headers = {} if path.startswith(PUBLIC_PREFIXES) else admin
        response = client.open(url, method=method.upper(), json=body, headers=headers)
        check(doc, path, method, response)
    unauthenticated = client.get("/api/v1/dags")
    check(doc, "/api/v1/dags", "get", unauthenticated)
    not_json = client.post("/api/v1/secrets", data="x", content_type="text/plain", headers=admin)
    assert not_json.status_code == 415
    check(doc, "/api/v1/secrets", "post", not_json)
