"""#18: what the API reads does not grow with the history or the number of DAGs: the SQL
statements one request makes are the same for 3 DAGs as for 30, for 5 runs as for 50, for a
run of 3 tasks as for one of 30; and each answer is what serializing the rows one by one
would show. On every backend."""

from contextlib import contextmanager

from app.engine import serialize
from app.store.db import db
from app.store.models import DagRun, TaskInstance
from tests.conftest import deploy_source

SOURCE = "def handler(event, context):\n    return 1\n"


@contextmanager
def counting_statements():
    """The SQL statements this process sends to the database meanwhile."""
    made: list[str] = []

    def hook(event):
        made.append(event.sql)

    db.obj.query_hooks.append(hook)
    try:
        yield made
    finally:
        db.obj.query_hooks.remove(hook)


def statements(client, headers, url: str) -> list[str]:
    """The SQL statements one GET of ``url`` makes (answered 200)."""
    with counting_statements() as made:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_json()
    return made


def add_dag(client, headers, dag_id: str, tasks: int = 2, functions: int = 1) -> None:
    """A DAG of ``tasks`` tasks in a chain, each of one of ``functions`` functions f0, f1..."""
    body = {
        "dag_id": dag_id,
        "tasks": [
            {
                "task_id": f"t{i}",
                "function": f"f{i % functions}",
                "upstream": [f"t{i - 1}"] if i else [],
            }
            for i in range(tasks)
        ],
    }
    response = client.post("/api/v1/dags", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()


def deploy(client, headers, count: int) -> None:
    for number in range(count):
        deploy_source(client, headers, f"f{number}", SOURCE)


def trigger(client, headers, dag_id: str, times: int = 1) -> list[int]:
    url = f"/api/v1/dags/{dag_id}/runs"
    return [client.post(url, headers=headers).get_json()["run_id"] for _ in range(times)]


def test_listing_dags_makes_as_many_statements_for_30_dags_as_for_3(client, admin):
    deploy(client, admin, 1)
    counts = []
    for total in (3, 30):
        for number in range(len(counts) and 3, total):
            add_dag(client, admin, f"d{number:02d}")
            trigger(client, admin, f"d{number:02d}", 2)
        counts.append(len(statements(client, admin, "/api/v1/dags")))
    assert counts[0] == counts[1], counts


def test_a_page_of_runs_makes_as_many_statements_for_50_runs_as_for_5(client, admin):
    deploy(client, admin, 1)
    add_dag(client, admin, "d")
    counts = []
    for total in (5, 50):
        trigger(client, admin, "d", total - len(counts) * 5)
        made = statements(client, admin, "/api/v1/dags/d/runs?limit=100")
        counts.append(len(made))
    assert counts[0] == counts[1], counts
    page = client.get("/api/v1/dags/d/runs?limit=100&state=queued", headers=admin).get_json()
    assert {run["state"] for run in page["runs"]} == {"queued"}


def test_a_run_makes_as_many_statements_with_30_tasks_as_with_3(client, admin):
    deploy(client, admin, 30)
    add_dag(client, admin, "small", tasks=3, functions=3)
    add_dag(client, admin, "big", tasks=30, functions=30)
    small, big = trigger(client, admin, "small")[0], trigger(client, admin, "big")[0]
    few = statements(client, admin, f"/api/v1/runs/{small}")
    many = statements(client, admin, f"/api/v1/runs/{big}")
    assert len(few) == len(many), (few, many)


def test_listing_functions_makes_as_many_statements_for_30_as_for_3(client, admin):
    counts = []
    for total in (3, 30):
        for number in range(len(counts) and 3, total):
            deploy_source(client, admin, f"f{number:02d}", SOURCE)
            deploy_source(client, admin, f"f{number:02d}", SOURCE + "# v2\n")
        counts.append(len(statements(client, admin, "/api/v1/functions")))
    assert counts[0] == counts[1], counts
    listed = client.get("/api/v1/functions", headers=admin).get_json()["functions"]
    assert [(f["name"], f["version"]) for f in listed] == [(f"f{n:02d}", 2) for n in range(30)]


def test_a_function_makes_as_many_statements_with_10_versions_as_with_1(client, admin):
    deploy_source(client, admin, "f", SOURCE)
    one = statements(client, admin, "/api/v1/functions/f")
    for version in range(2, 11):
        deploy_source(client, admin, "f", SOURCE + f"# v{version}\n")
    ten = statements(client, admin, "/api/v1/functions/f")
    assert len(one) == len(ten), (one, ten)


def test_metrics_reads_no_history(client, admin):
    deploy(client, admin, 1)
    add_dag(client, admin, "d")
    trigger(client, admin, "d", 3)
    made = statements(client, admin, "/metrics")
    assert not [sql for sql in made if "task_try" in sql or "dag_version" in sql], made


def lazily_shown(run_id: int) -> dict:
    """The run as serialize shows it from its rows read one by one."""
    with db.connection_context():
        run = DagRun.get_by_id(run_id)
        tasks = TaskInstance.select().where(TaskInstance.run == run).order_by(TaskInstance.id)
        return serialize.run(run, list(tasks))


def test_runs_read_in_one_query_show_what_their_rows_read_one_by_one_show(client, admin):
    deploy(client, admin, 2)
    add_dag(client, admin, "d", tasks=3, functions=2)
    dag_run = trigger(client, admin, "d")[0]
    invoked = client.post("/api/v1/functions/f1/invoke?wait=0", json={"x": 1}, headers=admin)
    invoke_run = invoked.get_json()["run_id"]
    for run_id in (dag_run, invoke_run):
        shown = client.get(f"/api/v1/runs/{run_id}", headers=admin).get_json()
        assert shown == lazily_shown(run_id)
    page = client.get("/api/v1/dags/d/runs", headers=admin).get_json()["runs"]
    assert page == [{k: v for k, v in lazily_shown(dag_run).items() if k != "tasks"}]
    listed = client.get("/api/v1/dags", headers=admin).get_json()["dags"]
    one = client.get("/api/v1/dags/d", headers=admin).get_json()
    assert listed[0]["last_run"] == one["last_run"] == page[0]


def test_each_dag_is_listed_with_its_newest_run(client, admin):
    deploy(client, admin, 1)
    for dag_id in ("a", "b", "c"):
        add_dag(client, admin, dag_id)
    newest = {"a": trigger(client, admin, "a", 3)[-1], "b": trigger(client, admin, "b")[-1]}
    trigger(client, admin, "a")  # a run of another DAG after b's does not hide b's
    newest["a"] = trigger(client, admin, "a")[-1]
    listed = client.get("/api/v1/dags", headers=admin).get_json()["dags"]
    last = {d["dag_id"]: d["last_run"] and d["last_run"]["run_id"] for d in listed}
    assert last == {**newest, "c": None}
