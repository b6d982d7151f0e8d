"""What refers to what across functions and DAGs: a function a DAG's current version uses
(as a task or as its on_success / on_failure callback) cannot be deleted."""

from app.domain.errors import Conflict
from app.engine import dags, functions


def delete_function(name: str) -> None:
    """Delete function ``name`` with its versions; Conflict (409) while a DAG uses it."""
    function = functions.get(name)
    users = sorted(dag_id for dag_id, names in _current_dag_functions() if name in names)
    if users:
        raise Conflict(f"function {name!r} is used by DAGs: {', '.join(users)}", {"dags": users})
    function.delete_instance()


def _current_dag_functions():
    """(dag_id, function names) for each DAG's current version."""
    for dag, version in dags.current_versions():
        callbacks = {version.spec.get("on_success"), version.spec.get("on_failure")} - {None}
        yield dag.dag_id, {task["function"] for task in version.spec["tasks"]} | callbacks
