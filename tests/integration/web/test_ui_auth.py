"""The web UI's sign-in, session cookie, CSRF and roles, on every backend (Flask's test
client; the browser tests in tests/browser drive the same pages in Chromium)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from app.domain.timeutil import utcnow
from app.engine import auth, runs
from app.store.db import db
from app.store.models import ApiToken, Dag, DagRun, UiSession
from tests.conftest import ADMIN_TOKEN, deploy_examples

PAGES = [
    "/",
    "/?q=example&state=failed",
    "/dags/example_pipeline",
    "/dags/example_pipeline?tab=graph",
    "/dags/example_pipeline?tab=code&version=1",
    "/runs/1",
    "/runs/1/tasks/hello/logs?try=1",
    "/runs/1/tasks/hello/logs/download?try=1",
    "/functions",
    "/functions/hello?version=1",
]
JSON_ENDPOINTS = [
    "/ui/api/dags",
    "/ui/api/dags/example_pipeline/grid",
    "/ui/api/runs/1",
    "/ui/api/runs/1/tasks/hello/logs?try=1&offset=0",
]
POSTS = [
    "/dags/example_pipeline/trigger",
    "/dags/example_pipeline/pause",
    "/runs/1/cancel",
    "/runs/1/rerun",
    "/runs/1/tasks/hello/clear",
    "/runs/1/tasks/hello/mark",
    "/functions",
    "/logout",
]
SECRETS = ["def handler", "greeting", "example_failure", "Ada"]  # data a page would show


@pytest.fixture
def ui(client, admin):
    """The examples deployed and run 1 of example_pipeline created (with conf)."""
    deploy_examples(client, admin)
    with db.connection_context():
        runs.trigger("example_pipeline", {"name": "Ada"})
    return client


def sign_in(client, token: str, next_url: str = "/"):
    client.get("/login")
    return client.post(
        "/login", data={"token": token, "next": next_url, "csrf_token": csrf_of(client)}
    )


def csrf_of(client) -> str:
    with client.session_transaction() as session:
        return session.get("csrf", "")


def new_token(role: str) -> str:
    with db.connection_context():
        return auth.create_token(role)


def paused() -> bool:
    with db.connection_context():
        return Dag.get(Dag.dag_id == "example_pipeline").paused


def test_every_page_redirects_to_sign_in_and_shows_no_data(ui):
    for page in PAGES:
        response = ui.get(page)
        assert response.status_code == 302, page
        target = urlsplit(response.location)
        assert target.path == "/login" and parse_qs(target.query)["next"] == [page], page
        body = response.get_data(as_text=True)
        assert not any(secret in body for secret in SECRETS), page


def test_json_endpoints_answer_401_without_a_session(ui):
    for endpoint in JSON_ENDPOINTS:
        response = ui.get(endpoint)
        assert response.status_code == 401, endpoint
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_posts_without_a_session_change_nothing(ui):
    for endpoint in POSTS:
        response = ui.post(endpoint, data={"paused": "true", "state": "failed"})
        assert response.status_code == 302, endpoint
        assert response.location.startswith("/login"), endpoint
    assert not paused()
    with db.connection_context():
        assert len(runs.list_for_dag(Dag.get(Dag.dag_id == "example_pipeline"))) == 1


def test_sign_in_with_a_wrong_token_is_refused(ui):
    response = sign_in(ui, "brisa_wrong")
    assert response.status_code == 401
    assert "That token does not work" in response.get_data(as_text=True)
    assert ui.get("/").status_code == 302


def test_sign_in_keeps_no_token_in_the_cookie_and_goes_to_next(ui):
    response = sign_in(ui, ADMIN_TOKEN, next_url="/dags/example_pipeline?tab=graph")
    assert response.status_code == 303
    assert response.location == "/dags/example_pipeline?tab=graph"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    with ui.session_transaction() as session:
        stored = dict(session)
    assert set(stored) == {"role", "tid", "fp", "csrf", "sid"}
    assert stored["role"] == "admin" and ADMIN_TOKEN not in str(stored)
    for page in PAGES:
        assert ui.get(page).status_code == 200, page
    assert "example_pipeline" in ui.get("/").get_data(as_text=True)
    assert ui.get("/ui/api/runs/1").get_json()["run"]["run_id"] == 1


def test_sign_in_refuses_an_offsite_next(ui):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = sign_in(ui, ADMIN_TOKEN, next_url=target)
        assert response.location == "/", target


def test_sign_in_needs_the_csrf_token(ui):
    ui.get("/login")
    response = ui.post("/login", data={"token": ADMIN_TOKEN})
    assert response.status_code == 400
    assert ui.get("/").status_code == 302


def test_a_post_without_the_right_csrf_token_is_400(ui):
    sign_in(ui, ADMIN_TOKEN)
    for sent in ({}, {"csrf_token": "forged"}):
        response = ui.post("/dags/example_pipeline/pause", data={"paused": "true", **sent})
        assert response.status_code == 400
    assert not paused()
    response = ui.post(
        "/dags/example_pipeline/pause", data={"paused": "true"}, headers={"X-CSRF-Token": "no"}
    )
    assert response.status_code == 400 and not paused()

    response = ui.post(
        "/dags/example_pipeline/pause", data={"paused": "true", "csrf_token": csrf_of(ui)}
    )
    assert response.status_code == 303 and paused()
    response = ui.post(
        "/dags/example_pipeline/pause",
        data={"paused": "false"},
        headers={"X-CSRF-Token": csrf_of(ui), "Accept": "application/json"},
    )
    assert response.get_json()["paused"] is False and not paused()


def test_the_viewer_sees_but_cannot_change(ui):
    sign_in(ui, new_token("viewer"))
    for page in PAGES:
        assert ui.get(page).status_code == 200, page
    for page in ("/", "/dags/example_pipeline", "/runs/1", "/functions", "/functions/hello"):
        body = ui.get(page).get_data(as_text=True)
        for control in ("data-trigger", 'data-fetch="pause"', "/clear", "/mark", "/cancel"):
            assert control not in body, (page, control)
        assert 'action="/functions"' not in body, page
    response = ui.post(
        "/dags/example_pipeline/pause",
        data={"paused": "true"},
        headers={"X-CSRF-Token": csrf_of(ui), "Accept": "application/json"},
    )
    assert response.status_code == 403
    assert "operator" in response.get_json()["error"]["message"]
    response = ui.post("/dags/example_pipeline/trigger", data={"csrf_token": csrf_of(ui)})
    assert response.status_code == 303 and not paused()
    assert "needs the operator role" in ui.get(response.location).get_data(as_text=True)


def test_an_operator_may_trigger_but_not_deploy(ui):
    sign_in(ui, new_token("operator"))
    headers = {"X-CSRF-Token": csrf_of(ui), "Accept": "application/json"}
    response = ui.post("/dags/example_pipeline/trigger", data={"conf": "[1]"}, headers=headers)
    assert response.status_code == 422 and "JSON object" in response.get_json()["error"]["message"]
    response = ui.post(
        "/dags/example_pipeline/trigger", data={"conf": '{"name": "Bo"}'}, headers=headers
    )
    assert response.status_code == 200 and response.get_json()["run_id"] == 2
    response = ui.post(
        "/functions", data={"name": "x", "source": "def handler(e, c): pass"}, headers=headers
    )
    assert response.status_code == 403


def test_a_revoked_token_signs_its_session_out(ui):
    token = new_token("operator")
    sign_in(ui, token)
    assert ui.get("/").status_code == 200
    with db.connection_context():
        ApiToken.update(revoked_at=utcnow()).where(
            ApiToken.token_hash == auth.hash_token(token)
        ).execute()
    assert ui.get("/").status_code == 302


def test_sign_out_ends_the_session(ui):
    sign_in(ui, ADMIN_TOKEN)
    assert ui.post("/logout", data={"csrf_token": csrf_of(ui)}).status_code == 303
    assert ui.get("/").status_code == 302


def test_a_cookie_copied_before_sign_out_no_longer_works_after_it(ui):
    """#16.8: Flask's session lives in its cookie, so a copy taken before sign-out signed in
    after it. The session is ended on the server."""
    sign_in(ui, ADMIN_TOKEN)
    copied = ui.get_cookie("session")
    assert copied is not None
    other = ui.application.test_client()  # another browser, holding the copy
    other.set_cookie("session", copied.value)
    assert other.get("/").status_code == 200  # the copy works while the session lasts
    assert ui.post("/logout", data={"csrf_token": csrf_of(ui)}).status_code == 303
    assert other.get("/").status_code == 302  # and not after the sign-out


def test_a_session_past_its_lifetime_is_over(ui):
    sign_in(ui, ADMIN_TOKEN)
    with db.connection_context():
        long_ago = utcnow() - auth.SESSION_LIFETIME
        UiSession.update(started_at=long_ago).execute()
    assert ui.get("/").status_code == 302


def test_errors_show_the_core_message_not_a_trace(ui):
    sign_in(ui, ADMIN_TOKEN)
    response = ui.get("/dags/nope")
    assert response.status_code == 404 and "no DAG" in response.get_data(as_text=True)
    response = ui.post(
        "/functions",
        data={"name": "broken", "source": "def handler(:\n", "csrf_token": csrf_of(ui)},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "Not deployed" in body and "def handler(:" in body
    assert "Traceback" not in body


def test_the_session_cookie_is_secure_off_the_embedded_default(backend, monkeypatch):
    from app.web import create_app

    assert create_app(backend.settings).config["SESSION_COOKIE_SECURE"] == (
        backend.name != "embedded"
    )
    monkeypatch.setenv("BRISA_SECURE_COOKIES", "1")
    assert create_app(backend.settings).config["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("BRISA_SECURE_COOKIES", "0")
    assert create_app(backend.settings).config["SESSION_COOKIE_SECURE"] is False


def test_run_actions_and_logs_through_the_ui(ui):
    sign_in(ui, new_token("operator"))
    headers = {"X-CSRF-Token": csrf_of(ui), "Accept": "application/json"}
    response = ui.post("/runs/1/tasks/hello/mark", data={"state": "failed"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    states = {t["task_id"]: t["state"] for t in ui.get("/ui/api/runs/1").get_json()["tasks"]}
    assert states["hello"] == "failed"
    rerun = ui.post("/runs/1/rerun", headers=headers).get_json()
    assert rerun["message"] == "Rerunning hello, double, triple, summarise."  # upstream_failed too
    response = ui.post("/runs/1/tasks/double/clear", headers=headers)
    assert response.status_code == 409  # not finished: the core's message, as JSON
    assert "only a finished task" in response.get_json()["error"]["message"]
    assert ui.post("/runs/1/cancel", headers=headers).status_code == 200
    run = ui.get("/ui/api/runs/1").get_json()
    assert run["run"]["state"] in ("failed", "cancelled") and run["can_rerun"]

    log = ui.get("/ui/api/runs/1/tasks/hello/logs?try=1&offset=0").get_json()
    assert log["live"] is False and log["task"]["task_id"] == "hello"
    assert ui.get("/runs/1/tasks/hello/logs?try=7").status_code == 422
    download = ui.get("/runs/1/tasks/hello/logs/download?try=1")
    assert (
        download.mimetype == "text/plain"
        and "attachment" in download.headers["Content-Disposition"]
    )


@pytest.mark.parametrize(
    "path",
    [
        "/dags/example_pipeline?run=99999999999999999999999",
        "/dags/example_pipeline?tab=code&version=%C2%B2",
        "/runs/1/tasks/hello/logs?try=99999999999999999999999",
        "/functions/hello?version=99999999999999999999999",
        "/ui/api/runs/1/tasks/hello/logs?try=1&offset=99999999999999999999999",
    ],
)
def test_a_query_number_out_of_range_is_a_clear_400_not_a_500(ui, path):
    assert sign_in(ui, ADMIN_TOKEN).status_code == 303
    response = ui.get(path)
    assert response.status_code in (400, 422), response.status_code
    assert b"must be a whole number from" in response.data


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ('{"name": "ui\\u0000nul"}', "may not contain NUL"),  # the example (#15.4)
        ('{"x": NaN}', "NaN is not JSON"),  # #15.3
        ('{"x": ' + "[" * 2000 + "]" * 2000 + "}", "nested deeper than 100 levels"),
        ('{"x": ' + "[" * 330 + "]" * 330 + "}", "nested deeper than 100 levels"),
    ],
)
def test_the_trigger_forms_conf_is_refused_as_the_apis_body_is(ui, conf, message):
    sign_in(ui, new_token("operator"))
    headers = {"X-CSRF-Token": csrf_of(ui), "Accept": "application/json"}
    response = ui.post("/dags/example_pipeline/trigger", data={"conf": conf}, headers=headers)
    assert response.status_code == 422 and message in response.get_json()["error"]["message"]
    with db.connection_context():
        assert DagRun.select().count() == 1


@pytest.mark.parametrize(
    ("referrer", "location"),
    [
        ("https://evil.example/phish", "/"),  # #16.10: it was followed
        ("//evil.example/x", "/"),
        ("http://localhost/dags/example_pipeline?tab=runs", "/dags/example_pipeline?tab=runs"),
        (None, "/"),
    ],
)
def test_a_failed_form_goes_back_only_to_a_page_of_this_site(ui, referrer, location):
    sign_in(ui, ADMIN_TOKEN)
    headers = {"Referer": referrer} if referrer else {}
    # Cancelling run 1 twice: the second is refused (409), so the form goes back.
    ui.post("/runs/1/cancel", data={"csrf_token": csrf_of(ui)})
    response = ui.post("/runs/1/cancel", data={"csrf_token": csrf_of(ui)}, headers=headers)
    assert response.status_code == 303
    assert response.location == location
