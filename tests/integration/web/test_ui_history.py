"""#18: what the web UI reads does not grow with the history or the number of DAGs: each page
and poll makes as many SQL statements for 3 DAGs as for 30, for 5 runs as for 50; the DAGs
page shows each DAG's last runs; and a grid poll that sends its cursor gets only what changed
since (a run that changed or is not finished, the task list if it changed), which merged into
what the client held is the whole grid. On every backend."""

from contextlib import contextmanager

import pytest

from app.engine import runs
from app.store.db import db
from app.web import ui_data
from tests.conftest import ADMIN_TOKEN, deploy_source, wait_for_run

SOURCE = "def handler(event, context):\n    return 1\n"


@pytest.fixture
def ui(client, admin):
    """The client signed in to the UI as admin, with function f deployed."""
    deploy_source(client, admin, "f", SOURCE)
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    signed_in = client.post("/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf})
    assert signed_in.status_code == 303
    return client


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


def statements(client, url: str) -> list[str]:
    """The SQL statements one GET of ``url`` makes (answered 200)."""
    with counting_statements() as made:
        response = client.get(url)
    assert response.status_code == 200, url
    return made


def add_dag(client, admin, dag_id: str, task_ids=("t0", "t1")) -> None:
    """A DAG (or its next version) of ``task_ids`` in a chain, each running f."""
    tasks = [
        {"task_id": task_id, "function": "f", "upstream": [task_ids[i - 1]] if i else []}
        for i, task_id in enumerate(task_ids)
    ]
    response = client.put(
        f"/api/v1/dags/{dag_id}", json={"dag_id": dag_id, "tasks": tasks}, headers=admin
    )
    assert response.status_code in (200, 201), response.get_json()


def trigger(client, admin, dag_id: str, times: int = 1) -> list[int]:
    url = f"/api/v1/dags/{dag_id}/runs"
    return [client.post(url, headers=admin).get_json()["run_id"] for _ in range(times)]


def grid(client, dag_id: str, cursor: str | None = None) -> dict:
    query = "" if cursor is None else f"?cursor={cursor}"
    response = client.get(f"/ui/api/dags/{dag_id}/grid{query}")
    assert response.status_code == 200
    return response.get_json()


def ui_urls(client, dag_id: str) -> list[str]:
    """Every page and poll of the DAGs page and of a DAG's page, the grid's poll with and
    without the cursor its page holds."""
    cursor = grid(client, dag_id)["cursor"]
    return [
        "/",
        "/ui/api/dags",
        f"/dags/{dag_id}",
        f"/dags/{dag_id}?tab=graph",
        f"/dags/{dag_id}?tab=code",
        f"/ui/api/dags/{dag_id}/grid",
        f"/ui/api/dags/{dag_id}/grid?cursor={cursor}",
    ]


def counts(client, urls: list[str]) -> dict[str, int]:
    return {url.split("cursor=")[0]: len(statements(client, url)) for url in urls}


def test_the_ui_makes_as_many_statements_for_30_dags_as_for_3(ui, admin):
    made = []
    for total in (3, 30):
        for number in range(len(made) and 3, total):
            add_dag(ui, admin, f"d{number:02d}")
            trigger(ui, admin, f"d{number:02d}", 2)
        made.append(counts(ui, ui_urls(ui, "d01")))
    assert made[0] == made[1]


def test_the_ui_makes_as_many_statements_for_50_runs_as_for_5(ui, admin):
    add_dag(ui, admin, "d")
    made = []
    for total in (5, 50):
        trigger(ui, admin, "d", total - len(made) * 5)
        made.append(counts(ui, ui_urls(ui, "d")))
    assert made[0] == made[1]
    assert len(grid(ui, "d")["run_ids"]) == ui_data.GRID_RUNS


def test_the_functions_pages_make_as_many_statements_for_10_functions_as_for_1(ui, admin):
    made = []
    for total in (1, 10):
        for number in range(len(made), total):
            deploy_source(ui, admin, f"g{number}", SOURCE)
            deploy_source(ui, admin, f"g{number}", SOURCE + "# v2\n")
        made.append(counts(ui, ["/functions", "/functions/g0"]))
    assert made[0] == made[1]
    page = ui.get("/functions").get_data(as_text=True)
    assert all(f'data-function="g{n}"' in page for n in range(10))


def test_the_dags_page_shows_each_dags_last_runs_oldest_first(ui, admin):
    for dag_id in ("a", "b", "c"):
        add_dag(ui, admin, dag_id)
    ids = {"a": trigger(ui, admin, "a", 8), "b": trigger(ui, admin, "b", 2)}
    ids["a"] += trigger(ui, admin, "a", ui_data.RECENT_RUNS)  # after b's: b keeps its two
    rows = {row["dag_id"]: row for row in ui.get("/ui/api/dags").get_json()["dags"]}
    shown = {dag_id: [square["run_id"] for square in row["runs"]] for dag_id, row in rows.items()}
    assert shown == {"a": ids["a"][-ui_data.RECENT_RUNS :], "b": ids["b"], "c": []}
    assert rows["a"]["last_state"] and rows["c"]["last_state"] is None


def merged(held: dict, fresh: dict) -> dict:
    """What the page's script makes of a poll's answer (ui.js ``mergeGrid``)."""
    runs_by_id = {run["run_id"]: run for run in held["runs"] + fresh["runs"]}
    return {
        "run_ids": fresh["run_ids"],
        "runs": [runs_by_id[run_id] for run_id in fresh["run_ids"]],
        "cells": {
            str(r): fresh["cells"].get(str(r), held["cells"].get(str(r), {}))
            for r in fresh["run_ids"]
        },
        "tasks": fresh.get("tasks", held["tasks"]),
        "cursor": fresh["cursor"],
    }


def whole(answer: dict) -> dict:
    return {key: answer[key] for key in ("run_ids", "runs", "cells", "tasks", "cursor")}


def sent(answer: dict) -> list[int]:
    assert sorted(answer["cells"]) == sorted(str(run["run_id"]) for run in answer["runs"])
    return [run["run_id"] for run in answer["runs"]]


def test_a_grid_poll_gets_only_what_changed_since_its_cursor(ui, admin, consumer):
    add_dag(ui, admin, "d")
    first, second = trigger(ui, admin, "d", 2)
    for run_id in (first, second):
        wait_for_run(run_id)
    held = grid(ui, "d")
    assert sent(held) == [first, second] and held["tasks"] == ["t0", "t1"]

    nothing = grid(ui, "d", held["cursor"])
    assert sent(nothing) == [] and "tasks" not in nothing
    assert nothing["run_ids"] == [first, second] and nothing["cursor"] == held["cursor"]

    with db.connection_context():
        runs.mark(first, "t1", "failed")  # the finished run is reopened, and ends again
    assert wait_for_run(first).state == "failed"
    third = trigger(ui, admin, "d")[0]
    wait_for_run(third)
    changed = grid(ui, "d", held["cursor"])
    assert sent(changed) == [first, third] and "tasks" not in changed
    assert changed["cells"][str(first)]["t1"]["state"] == "failed"
    assert merged(held, changed) == whole(grid(ui, "d"))


def test_a_run_not_finished_is_sent_at_every_poll(ui, admin):
    add_dag(ui, admin, "d")
    run_id = trigger(ui, admin, "d")[0]  # no worker: it stays queued
    held = grid(ui, "d")
    again = grid(ui, "d", held["cursor"])
    assert sent(again) == [run_id] and set(again["cells"][str(run_id)]) == {"t0", "t1"}


def test_a_new_version_sends_the_task_list_with_the_tasks_only_older_runs_have(ui, admin):
    add_dag(ui, admin, "d", ("t0", "t1"))
    trigger(ui, admin, "d")
    held = grid(ui, "d")
    add_dag(ui, admin, "d", ("t0", "t2", "t3"))
    assert grid(ui, "d", held["cursor"])["tasks"] == ["t0", "t2", "t3", "t1"]
    assert "tasks" not in grid(ui, "d", grid(ui, "d")["cursor"])


@pytest.mark.parametrize("cursor", ["", "nonsense", "1/2:3:4", "1/x:y", "9" * 5000])
def test_a_cursor_this_code_did_not_write_gets_the_whole_grid(ui, admin, cursor):
    add_dag(ui, admin, "d")
    run_id = trigger(ui, admin, "d")[0]
    with db.connection_context():
        runs.cancel(run_id)  # finished: a cursor that held it would not get it again
    answer = grid(ui, "d", cursor)
    assert sent(answer) == [run_id] and answer["tasks"] == ["t0", "t1"]
