"""What refers to what across functions and DAGs: a function a DAG's current version uses
(as a task or as its on_success / on_failure callback) cannot be deleted."""

from app.domain.errors import Conflict
from app.engine import dags, functions, runs
from app.store.db import db
from app.store.models import Dag, DagRun, Function, FunctionVersion, TaskInstance


def delete_function(name: str, cancel: bool = False) -> None:
    """Delete function ``name`` with its versions and every run of it: its invoke runs with
    their task instances, tries and logs. Conflict (409) while a DAG's current version uses
    it, or while runs using it are queued or running, unless ``cancel``: then those runs are
    cancelled and their tries stopped first."""
    function = functions.get(name)
    users = sorted(dag_id for dag_id, names in _current_dag_functions() if name in names)
    if users:
        raise Conflict(f"function {name!r} is used by DAGs: {', '.join(users)}", {"dags": users})
    _delete_unless_live(
        f"function {name!r}",
        f"/api/v1/functions/{name}",
        lambda: _live_runs_using(function),
        function.delete_instance,
        cancel,
    )


def delete_dag(dag_id: str, cancel: bool = False) -> None:
    """Delete DAG ``dag_id`` with its versions, runs, task instances, tries and logs (its
    functions stay). Conflict (409) while it has queued or running runs, unless ``cancel``:
    then they are cancelled and their tries stopped first."""
    dag = dags.get(dag_id)
    _delete_unless_live(
        f"DAG {dag_id!r}",
        f"/api/v1/dags/{dag_id}",
        lambda: _live_runs_of(dag),
        dag.delete_instance,
        cancel,
    )


def _delete_unless_live(what: str, url: str, live_runs, delete, cancel: bool) -> None:
    """Delete, unless ``live_runs()`` names runs in flight: Conflict, or with ``cancel``
    cancel them and wait for their tries first. The last check and the delete are one
    transaction, so a run started meanwhile is refused, not half-deleted."""
    if cancel:
        runs.cancel_live_runs(live_runs())
    with db.atomic():
        live = live_runs()
        if live:
            listed = ", ".join(map(str, live[:20])) + (" ..." if len(live) > 20 else "")
            raise Conflict(
                f"{what} has runs in flight ({listed}): cancel them first, or"
                f" DELETE {url}?cancel=true to cancel them and delete",
                {"runs": live},
            )
        delete()


def _live_runs_of(dag: Dag) -> list[int]:
    live = DagRun.select(DagRun.id).where(
        (DagRun.dag == dag.id) & DagRun.state.in_(runs.LIVE_RUN_STATES)
    )
    return sorted(run.id for run in live)


def _live_runs_using(function: Function) -> list[int]:
    """The queued or running runs with a task instance on one of ``function``'s versions
    (its invoke runs, and runs of DAGs that used it)."""
    query = (
        TaskInstance.select(TaskInstance.run)
        .join(FunctionVersion)
        .switch(TaskInstance)
        .join(DagRun)
        .where((FunctionVersion.function == function.id) & DagRun.state.in_(runs.LIVE_RUN_STATES))
    )
    return sorted({ti.run_id for ti in query})


def _current_dag_functions():
    """(dag_id, function names) for each DAG's current version."""
    for dag, version in dags.current_versions():
        callbacks = {version.spec.get("on_success"), version.spec.get("on_failure")} - {None}
        yield dag.dag_id, {task["function"] for task in version.spec["tasks"]} | callbacks
