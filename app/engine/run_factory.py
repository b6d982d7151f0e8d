"""Creating a run's rows: the ``dag_run`` and one ``task_instance`` per task, pinned to the
function versions resolved now. Nothing here starts a run (app/engine/dispatch.py does): the
DAG callbacks of dispatch and the triggers of runs both build on this module."""

from peewee import chunked

from app.domain.errors import Invalid, NotFound
from app.domain.timeutil import utcnow
from app.engine import functions
from app.store import transitions
from app.store.models import DagRun, FunctionVersion, TaskInstance

INSERT_BATCH = 50  # rows per INSERT: 17 columns stay under SQLite's old 999-variable limit


def pin_versions(tasks: list[dict]) -> dict[str, FunctionVersion]:
    """Each task's function version, as resolved now (each distinct function once)."""
    resolved = {}
    for index, task in enumerate(tasks):
        wanted = (task["function"], task.get("version"))
        if wanted not in resolved:
            try:
                resolved[wanted] = functions.resolve(*wanted)
            except NotFound as exc:
                field = f"tasks[{index}].function"
                raise Invalid([{"field": field, "message": exc.message}]) from None
    return {t["task_id"]: resolved[(t["function"], t.get("version"))] for t in tasks}


def create_invoke_run(
    name: str, event, run_type: str = "invoke", callback_url: str | None = None
) -> DagRun:
    """A one-task run of function ``name``'s current version with ``event`` as its conf,
    left ``queued`` (the caller starts it in the same transaction)."""
    version = functions.resolve(name, None)
    task = {"task_id": name, "function": name, "upstream": [], "args": {}}
    run = create_run(
        None, None, version.function, run_type, None, event, None, callback_url=callback_url
    )
    create_task_instances(run, [task], {name: version})
    return run


def create_run(dag, version, function, run_type, logical_date, conf, key, interval=None, **extra):
    now = utcnow()
    start, end = interval or (None, None)
    row = transitions.new_run(
        dag=dag,
        dag_version=version,
        max_active_tasks=version.spec.get("max_active_tasks") if version else None,
        function=function,
        run_type=run_type,
        logical_date=logical_date or now,
        data_interval_start=start,
        data_interval_end=end,
        conf=conf,
        idempotency_key=key,
        created_at=now,
        **extra,
    )
    return DagRun.create(**row)


def create_task_instances(run, tasks: list[dict], pinned: dict[str, FunctionVersion]) -> None:
    """One task instance per task, inserted in batches (a 1,000-task DAG in a few statements)."""
    for batch in chunked(task_instance_rows(run, tasks, pinned), INSERT_BATCH):
        TaskInstance.insert_many(batch).execute()


def task_instance_rows(run, tasks: list[dict], pinned: dict[str, FunctionVersion]) -> list:
    """The rows of a new run's task instances, one per task, each knowing its downstream."""
    downstream: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
    for task in tasks:
        for upstream in task.get("upstream", []):
            downstream[upstream].append(task["task_id"])
    return [
        _task_instance_row(run, t, pinned[t["task_id"]], downstream[t["task_id"]]) for t in tasks
    ]


def _task_instance_row(run, task: dict, version: FunctionVersion, downstream: list[str]) -> dict:
    return transitions.new_task_instance(
        run=run,
        dag_pk=run.dag_id,
        pool=task.get("pool"),
        task_id=task["task_id"],
        function_version=version,
        try_number=0,
        max_tries=task.get("retries", 0) + 1,
        retry_delay=task.get("retry_delay", 10),
        retry_backoff=task.get("retry_backoff", False),
        max_retry_delay=task.get("max_retry_delay", 3600),
        timeout=task.get("timeout") or version.timeout,
        args=task.get("args") or {},
        upstream=list(task.get("upstream", [])),
        downstream=downstream,
        trigger_rule=task.get("trigger_rule", "all_success"),
        parked=False,
    )
