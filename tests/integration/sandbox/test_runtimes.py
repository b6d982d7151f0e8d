"""The http, sql and shell runtimes against real targets: an HTTP server started here, the real
Postgres (database brisa_rt), a real shell. Deployed over the API and run by the real worker
(invoke and DAG), and, for what needs secrets, also run in the sandbox directly."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest

from app.engine import crypto
from app.sandbox import supervisor as sandbox
from app.sandbox.job import Job
from app.store.db import db
from app.store.models import FunctionVersion, Secret
from tests.conftest import RUN_ID, SERVER_URL, deploy_source, require_postgres, wait_for_run

SQL_URL = os.environ.get("BRISA_RUNTIMES_PG_URL", f"{SERVER_URL}/brisa_rt_{RUN_ID}")
PY_SUM = (
    "python3 -c 'import json, os, sys; e = json.load(sys.stdin); print(json.dumps({"
    '"sum": sum(e["conf"]["nums"]), "same": json.loads(os.environ["BRISA_EVENT"]) == e, '
    '"task": os.environ["BRISA_TASK_ID"], "try": os.environ["BRISA_TRY_NUMBER"]}))\''
)


class Recorder(BaseHTTPRequestHandler):
    """/echo/...: the request as JSON; /text: plain text; /fail: 503."""

    def do_GET(self):
        self._answer()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path.startswith("/fail"):
            return self._send(503, "down for maintenance " + "x" * 300, "text/plain")
        if self.path.startswith("/text"):
            return self._send(200, "hello\n", "text/plain")
        echo = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": json.loads(body) if body.startswith(("{", "[")) else body,
        }
        self.server.seen.append(echo)
        self._send(200, json.dumps(echo), "application/json")

    def _send(self, status, text, content_type):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A ThreadingHTTPServer on 127.0.0.1; ``seen``: the requests it echoed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def http_base(http_server):
    return f"http://127.0.0.1:{http_server.server_address[1]}"


@pytest.fixture
def pg():
    """A connection to brisa_rt, with an empty table rt.items."""
    require_postgres(SQL_URL)
    connection = psycopg2.connect(SQL_URL)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS rt; DROP TABLE IF EXISTS rt.items")
        cursor.execute(
            "CREATE TABLE rt.items (id int PRIMARY KEY, name text, price numeric(8, 2),"
            " added date DEFAULT '2026-01-02', tags jsonb)"
        )
    yield connection
    connection.close()


def deploy(client, admin, name, runtime, spec, **fields):
    return deploy_source(client, admin, name, json.dumps(spec), runtime=runtime, **fields)


def invoke(client, admin, name, event=None):
    response = client.post(f"/api/v1/functions/{name}/invoke?wait=20", json=event, headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def logs(client, admin, run_id, task_id):
    response = client.get(f"/api/v1/runs/{run_id}/tasks/{task_id}/logs", headers=admin)
    return response.get_json()["text"]


def add_secret(name, value):
    with db.connection_context():
        Secret.create(name=name, value=crypto.encrypt(value))


# Deploying ---------------------------------------------------------------------------


def test_each_runtime_deploys_and_a_bad_spec_is_422_with_every_problem(client, admin):
    assert deploy(client, admin, "h", "http", {"url": "https://example.com"})["runtime"] == "http"
    sql = {"connection": "db", "query": "select 1"}
    assert deploy(client, admin, "q", "sql", sql, secrets=["db"])["version"] == 1
    assert deploy(client, admin, "s", "shell", {"command": "true"}, handler="ignored")
    bad = {"url": "/x", "method": "TRACE", "body": "{{ secrets.token }}"}
    body = {"name": "bad", "runtime": "http", "source": json.dumps(bad)}
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert {d["field"] for d in details} == {"source"}
    assert len(details) == 3, details


def test_secrets_are_validated_and_a_change_makes_a_new_version(client, admin):
    spec = {"command": "true"}
    assert deploy(client, admin, "s", "shell", spec)["version"] == 1
    assert deploy(client, admin, "s", "shell", spec, secrets=[])["version"] == 1
    assert deploy(client, admin, "s", "shell", spec, secrets=["a"])["version"] == 2
    assert deploy(client, admin, "s", "shell", spec, secrets=["a", "b"])["version"] == 3
    with db.connection_context():
        assert FunctionVersion.select().order_by(FunctionVersion.id.desc()).first().secrets == [
            "a",
            "b",
        ]
    body = {"name": "s", "runtime": "shell", "source": "{}", "secrets": ["ok", "-bad", 3]}
    response = client.post("/api/v1/functions", json=body, headers=admin)
    assert [d["field"] for d in response.get_json()["error"]["details"]] == ["secrets"]


# Through the worker ------------------------------------------------------------------


def test_http_invoke_templates_method_url_headers_and_body(client, admin, consumer, http_base):
    spec = {
        "method": "POST",
        "url": http_base + "/echo/{{ conf.id }}?run={{ context.run_id }}",
        "headers": {"X-Name": "n-{{ conf.name }}"},
        "body": {"ids": "{{ conf.ids }}", "label": "{{ conf.name }}!"},
    }
    deploy(client, admin, "post", "http", spec)
    body = invoke(client, admin, "post", {"id": 7, "ids": [1, 2], "name": "ada"})
    assert body["state"] == "success", body
    echo = body["result"]
    assert echo["method"] == "POST"
    assert echo["path"] == f"/echo/7?run={body['run_id']}"
    assert echo["headers"]["x-name"] == "n-ada"
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["body"] == {"ids": [1, 2], "label": "ada!"}


def test_http_text_response_and_non_2xx_failure(client, admin, consumer, http_base):
    deploy(client, admin, "text", "http", {"url": http_base + "/text"})
    assert invoke(client, admin, "text")["result"] == "hello\n"
    deploy(client, admin, "down", "http", {"url": http_base + "/fail"})
    body = invoke(client, admin, "down")
    assert body["state"] == "failed"
    assert body["error"] == "HTTP 503: down for maintenance " + "x" * 179
    assert "[brisa] http: HTTP 503" in logs(client, admin, body["run_id"], "down")


def test_http_missing_template_path_fails_the_try(client, admin, consumer, http_base):
    deploy(client, admin, "get", "http", {"url": http_base + "/echo/{{ conf.id }}"})
    body = invoke(client, admin, "get", {"name": "no id"})
    assert body["state"] == "failed"
    assert body["error"] == "template {{ conf.id }}: conf has no 'id'"


def test_shell_gets_the_event_on_stdin_and_in_env_stderr_goes_to_the_log(client, admin, consumer):
    deploy(client, admin, "sum", "shell", {"command": PY_SUM + "; echo progress >&2"})
    body = invoke(client, admin, "sum", {"nums": [1, 2, 3]})
    assert body["state"] == "success", body
    assert body["result"] == {"sum": 6, "same": True, "task": "sum", "try": "1"}
    assert "progress" in logs(client, admin, body["run_id"], "sum")


def test_shell_text_output_and_non_zero_exit(client, admin, consumer):
    deploy(client, admin, "hi", "shell", {"command": "printf 'hi there\\n'"})
    assert invoke(client, admin, "hi")["result"] == "hi there"
    deploy(client, admin, "argv", "shell", {"command": "printf %s-%s a 'b c'", "shell": False})
    assert invoke(client, admin, "argv")["result"] == "a-b c"
    deploy(client, admin, "oops", "shell", {"command": "echo broken >&2; exit 4"})
    body = invoke(client, admin, "oops")
    assert (body["state"], body["error"]) == ("failed", "exit code 4")
    assert "broken" in logs(client, admin, body["run_id"], "oops")


def test_dag_passes_results_downstream_into_templated_http_and_shell(
    client, admin, consumer, http_base
):
    deploy(
        client, admin, "numbers", "shell", {"command": """echo '{"ids": [3, 4], "label": "x y"}'"""}
    )
    post = {
        "method": "PUT",
        "url": http_base + "/echo/{{ args.kind }}/{{ upstream.numbers.label }}",
        "body": {"ids": "{{ upstream.numbers.ids }}", "conf": "{{ conf }}"},
    }
    deploy(client, admin, "post", "http", post)
    count = (
        "python3 -c 'import json, sys; e = json.load(sys.stdin);"
        ' print(len(e["upstream"]["post"]["body"]["ids"]))\''
    )
    deploy(client, admin, "count", "shell", {"command": count})
    dag = {
        "dag_id": "pipeline",
        "tasks": [
            {"task_id": "numbers", "function": "numbers"},
            {"task_id": "post", "function": "post", "upstream": ["numbers"], "args": {"kind": "k"}},
            {"task_id": "count", "function": "count", "upstream": ["post"]},
        ],
    }
    assert client.post("/api/v1/dags", json=dag, headers=admin).status_code == 201
    trigger = {"conf": {"who": "test"}}
    run_id = client.post("/api/v1/dags/pipeline/runs", json=trigger, headers=admin).get_json()[
        "run_id"
    ]
    assert wait_for_run(run_id).state == "success"
    tasks = client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()["tasks"]
    results = {task["task_id"]: task["result"] for task in tasks}
    assert results["numbers"] == {"ids": [3, 4], "label": "x y"}
    assert results["post"]["method"] == "PUT"
    assert results["post"]["path"] == "/echo/k/x%20y"
    assert results["post"]["body"] == {"ids": [3, 4], "conf": {"who": "test"}}
    assert results["count"] == 2


def test_sql_invoke_inserts_and_selects_with_bound_params(client, admin, consumer, pg):
    add_secret("pg", SQL_URL)
    insert = {
        "connection": "pg",
        "query": "insert into rt.items (id, name, price) values (%(id)s, %(name)s, %(price)s)",
        "params": {"id": "{{ conf.id }}", "name": "{{ conf.name }}", "price": "{{ conf.price }}"},
    }
    deploy(client, admin, "add", "sql", insert, secrets=["pg"])
    hostile = "x'); drop table rt.items; --"
    body = invoke(client, admin, "add", {"id": 1, "name": hostile, "price": 2.5})
    assert (body["state"], body["result"]) == ("success", {"rowcount": 1}), body
    select = {"connection": "pg", "query": "select id, name, price, added from rt.items"}
    deploy(client, admin, "list", "sql", select, secrets=["pg"])
    rows = invoke(client, admin, "list")["result"]
    assert rows == [{"id": 1, "name": hostile, "price": 2.5, "added": "2026-01-02"}]


def test_dag_passes_shell_rows_into_a_templated_sql_task(client, admin, consumer, pg):
    add_secret("pg", SQL_URL)
    deploy(client, admin, "rows", "shell", {"command": """echo '{"id": 5, "tags": ["a"]}'"""})
    insert = {
        "connection": "pg",
        "query": "insert into rt.items (id, name, tags) values (%s, %s, %s) returning id, tags",
        "params": ["{{ upstream.rows.id }}", "run {{ context.run_id }}", "{{ upstream.rows }}"],
    }
    deploy(client, admin, "insert", "sql", insert, secrets=["pg"])
    dag = {
        "dag_id": "load",
        "tasks": [
            {"task_id": "rows", "function": "rows"},
            {"task_id": "insert", "function": "insert", "upstream": ["rows"]},
        ],
    }
    assert client.post("/api/v1/dags", json=dag, headers=admin).status_code == 201
    run_id = client.post("/api/v1/dags/load/runs", headers=admin).get_json()["run_id"]
    assert wait_for_run(run_id).state == "success"
    tasks = client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()["tasks"]
    assert tasks[-1]["result"] == [{"id": 5, "tags": {"id": 5, "tags": ["a"]}}]


def test_a_python_function_sees_only_the_secrets_it_lists(client, admin, consumer):
    add_secret("greeting", "hello")
    add_secret("other", "not yours")
    source = (
        "def handler(event, context):\n"
        "    secrets = context.secrets\n"
        "    return {'names': sorted(secrets), 'upper': secrets['greeting'].upper()}\n"
    )
    deploy_source(client, admin, "py", source, secrets=["greeting"])
    assert invoke(client, admin, "py")["result"] == {"names": ["greeting"], "upper": "HELLO"}


def test_http_connection_is_a_secret_base_url(client, admin, consumer, http_server, http_base):
    add_secret("api", http_base + "/echo/")
    add_secret("token", "t0k")
    spec = {
        "url": "/items/{{ conf.id }}",
        "connection": "api",
        "headers": {"Authorization": "Bearer {{ secrets.token }}"},
    }
    deploy(client, admin, "item", "http", spec, secrets=["api", "token"])
    body = invoke(client, admin, "item", {"id": 9})
    assert body["state"] == "success", body
    assert http_server.seen[-1]["path"] == "/echo/items/9"
    assert http_server.seen[-1]["headers"]["authorization"] == "Bearer t0k"
    assert body["result"]["headers"]["authorization"] == "Bearer ***"  # masked by the worker


# In the sandbox directly, with job["secrets"] as the worker will fill it ---------------


def run_job(runtime, spec, secrets=None, conf=None):
    job = Job(
        runtime=runtime,
        source=json.dumps(spec),
        handler="handler",
        filename="<function demo v1>",
        event={"conf": conf, "args": {}, "upstream": {}},
        context={"run_id": 3, "task_id": "t", "try_number": 1},
        secrets=secrets or {},
        memory_mb=512,
        result_cap_bytes=1024 * 1024,
    )
    return sandbox.run(job, 20)


def test_sandbox_sql_binds_params_converts_types_and_commits(pg):
    secrets = {"db": SQL_URL}
    insert = {
        "connection": "db",
        "query": "insert into rt.items (id, name, price, tags) values (%(id)s, %(n)s, 9.99, %(t)s)",
        "params": {"id": "{{ conf.id }}", "n": "{{ conf.n }}", "t": "{{ conf.t }}"},
    }
    conf = {"id": 1, "n": "Robert'); drop table rt.items;--", "t": {"k": [1]}}
    assert run_job("sql", insert, secrets, conf).result == {"rowcount": 1}
    select = {"connection": "db", "query": "select * from rt.items where id = %s", "params": [1]}
    outcome = run_job("sql", select, secrets)
    assert outcome.result == [
        {"id": 1, "name": conf["n"], "price": 9.99, "added": "2026-01-02", "tags": {"k": [1]}}
    ]
    with pg.cursor() as cursor:  # committed: visible from another connection
        cursor.execute("select count(*) from rt.items")
        assert cursor.fetchone() == (1,)


def test_sandbox_sql_failures_are_clear(pg):
    secrets = {"db": SQL_URL, "my": "mysql://u@host/db"}
    bad = run_job("sql", {"connection": "db", "query": "select * from rt.nope"}, secrets)
    assert not bad.ok and bad.error.startswith('UndefinedTable: relation "rt.nope"')
    other = run_job("sql", {"connection": "my", "query": "select 1"}, secrets)
    assert other.error == "connection 'my': only postgresql:// URLs are supported, not mysql://"
    missing = run_job("sql", {"connection": "gone", "query": "select 1"}, secrets)
    assert missing.error == "secret 'gone' is not available to this function"


def test_sandbox_http_joins_a_connection_and_templates_secrets(http_base):
    spec = {
        "method": "DELETE",
        "url": "items/{{ conf.id }}",
        "connection": "api",
        "headers": {"Authorization": "Bearer {{ secrets.token }}"},
        "body": "raw {{ conf.id }}",
    }
    secrets = {"api": http_base + "/echo/", "token": "t0k"}
    echo = run_job("http", spec, secrets, {"id": 4}).result
    assert echo["method"] == "DELETE"
    assert echo["path"] == "/echo/items/4"
    assert echo["headers"]["authorization"] == "Bearer t0k"
    assert echo["body"] == "raw 4"


def test_sandbox_shell_output_over_the_result_cap_fails():
    outcome = run_job("shell", {"command": "yes"})
    assert outcome.error == f"stdout is over the result cap of {1024 * 1024} bytes"


def test_sandbox_python_context_secrets():
    job = Job(
        runtime="python",
        source="def handler(event, context):\n    return context.secrets\n",
        handler="handler",
        filename="<function demo v1>",
        event={"conf": None, "args": {}, "upstream": {}},
        context={"run_id": 3, "task_id": "t", "try_number": 1},
        secrets={"token": "t0k"},
        memory_mb=512,
        result_cap_bytes=1024 * 1024,
    )
    assert sandbox.run(job, 20).result == {"token": "t0k"}


def test_a_sql_connection_error_names_no_host_port_user_or_database(client, admin, consumer):
    """#16.9: viewers read 'connection to server at "127.0.0.1", port 5432 failed: FATAL:
    role "etl_user" does not exist'; the README says connection URLs never appear."""
    require_postgres()
    add_secret("warehouse", "postgresql://etl_user@127.0.0.1:5432/warehouse_db")
    sql = {"connection": "warehouse", "query": "SELECT 1"}
    deploy(client, admin, "etl", "sql", sql, secrets=["warehouse"])
    answer = invoke(client, admin, "etl")
    assert answer["state"] == "failed"
    error = answer["tasks"][0]["error"]
    assert "connection 'warehouse'" in error and "***" in error, error
    for detail in ("127.0.0.1", "5432", "etl_user", "warehouse_db"):
        assert detail not in error, error
        assert detail not in logs(client, admin, answer["run_id"], "etl")
