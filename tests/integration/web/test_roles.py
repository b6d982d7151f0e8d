"""Who may call what: every /api/v1 route × every role, from one table."""

import re

import pytest

from app.engine import auth
from app.store.db import db

# The least role each route needs. A new route fails test_the_table_covers_every_route
# until it is added here.
REQUIRED = {
    ("GET", "/api/v1/functions"): "viewer",
    ("POST", "/api/v1/functions"): "admin",
    ("GET", "/api/v1/functions/<name>"): "viewer",
    ("DELETE", "/api/v1/functions/<name>"): "admin",
    ("GET", "/api/v1/functions/<name>/versions/<int:number>"): "viewer",
    ("POST", "/api/v1/functions/<name>/invoke"): "operator",
    ("GET", "/api/v1/dags"): "viewer",
    ("POST", "/api/v1/dags"): "admin",
    ("GET", "/api/v1/dags/<dag_id>"): "viewer",
    ("PUT", "/api/v1/dags/<dag_id>"): "admin",
    ("PATCH", "/api/v1/dags/<dag_id>"): "operator",
    ("DELETE", "/api/v1/dags/<dag_id>"): "admin",
    ("POST", "/api/v1/dags/<dag_id>/webhook-secret"): "admin",
    ("POST", "/api/v1/dags/<dag_id>/runs"): "operator",
    ("GET", "/api/v1/dags/<dag_id>/runs"): "viewer",
    ("POST", "/api/v1/dags/<dag_id>/backfill"): "operator",
    ("GET", "/api/v1/runs/<int:run_id>"): "viewer",
    ("POST", "/api/v1/runs/<int:run_id>/cancel"): "operator",
    ("POST", "/api/v1/runs/<int:run_id>/rerun"): "operator",
    ("GET", "/api/v1/runs/<int:run_id>/tasks/<task_id>"): "viewer",
    ("GET", "/api/v1/runs/<int:run_id>/tasks/<task_id>/logs"): "viewer",
    ("POST", "/api/v1/runs/<int:run_id>/tasks/<task_id>/clear"): "operator",
    ("POST", "/api/v1/runs/<int:run_id>/tasks/<task_id>/mark"): "operator",
    ("GET", "/api/v1/pools"): "viewer",
    ("GET", "/api/v1/pools/<name>"): "viewer",
    ("PUT", "/api/v1/pools/<name>"): "admin",
    ("DELETE", "/api/v1/pools/<name>"): "admin",
    ("GET", "/api/v1/secrets"): "admin",
    ("POST", "/api/v1/secrets"): "admin",
    ("GET", "/api/v1/secrets/<name>"): "admin",
    ("DELETE", "/api/v1/secrets/<name>"): "admin",
    ("GET", "/api/v1/callbacks/secret"): "admin",
    ("GET", "/api/v1/tokens"): "admin",
    ("POST", "/api/v1/tokens"): "admin",
    ("DELETE", "/api/v1/tokens/<int:token_id>"): "admin",
    ("GET", "/api/v1/audit"): "admin",
}
PUBLIC = {"/api/v1/openapi.json"}  # the contract itself needs no token


def api_routes(flask_app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in flask_app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1") and rule.rule not in PUBLIC
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def concrete(rule: str) -> str:
    return re.sub(r"<int:[^>]+>", "999", re.sub(r"<(?!int:)[^>]+>", "x", rule))


def test_the_table_covers_every_route(client):
    assert api_routes(client.application) == set(REQUIRED)


@pytest.mark.parametrize("role", auth.ROLES)
def test_each_role_gets_403_exactly_below_what_a_route_needs(client, role):
    with db.connection_context():
        headers = {"Authorization": f"Bearer {auth.create_token(role)}"}
    for (method, rule), needed in sorted(REQUIRED.items()):
        response = client.open(concrete(rule), method=method, headers=headers, json={})
        if auth.ROLES.index(role) < auth.ROLES.index(needed):
            assert response.status_code == 403, (method, rule, role)
        else:
            assert response.status_code not in (401, 403), (
                method,
                rule,
                role,
                response.status_code,
            )


def test_without_a_token_every_route_is_401(client):
    for method, rule in sorted(REQUIRED):
        assert client.open(concrete(rule), method=method, json={}).status_code == 401, rule
