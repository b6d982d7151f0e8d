"""``python -m app``: migrate, token create, deploy, trigger, dev."""

import argparse
import json
import sys
from pathlib import Path

from app import auth, dags, db, functions, migrations, retention, runs
from app.config import current
from app.errors import BrisaError
from app.timeutil import utcnow


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dev":
        from app import devserver

        return devserver.main()
    db.ensure_bound()
    try:
        with db.db.connection_context():
            return args.handler(args)
    except BrisaError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for detail in exc.details or []:
            if isinstance(detail, dict):
                print(f"  {detail.get('field')}: {detail.get('message')}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Brisa")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="create or upgrade the schema").set_defaults(
        handler=cmd_migrate
    )

    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="print a new token (stored hashed)")
    create.add_argument("--role", choices=auth.ROLES, default="viewer")
    create.add_argument("--name", default="")
    create.add_argument("--expires-in-days", type=float)
    create.set_defaults(handler=cmd_token_create)
    token_commands.add_parser("list", help="tokens: id, name, role, dates").set_defaults(
        handler=cmd_token_list
    )
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(
        handler=lambda args: _print_json({"revoked": auth.revoke(args.token_id).id})
    )

    deploy = commands.add_parser(
        "deploy", help="deploy a function (.py), a DAG (.json) or a folder"
    )
    deploy.add_argument("path", type=Path)
    deploy.set_defaults(handler=cmd_deploy)

    trigger = commands.add_parser("trigger", help="trigger a DAG run")
    trigger.add_argument("dag_id")
    trigger.add_argument("--conf", type=json.loads, help="the run's conf as JSON")
    trigger.set_defaults(handler=cmd_trigger)

    for name, paused in (("pause", True), ("unpause", False)):
        command = commands.add_parser(name, help=f"{name} a DAG's schedule")
        command.add_argument("dag_id")
        command.set_defaults(handler=lambda args, p=paused: cmd_pause(args, p))

    backfill = commands.add_parser("backfill", help="runs for every due time in [start, end]")
    backfill.add_argument("dag_id")
    backfill.add_argument("--start", required=True, help="ISO-8601 date-time")
    backfill.add_argument("--end", required=True, help="ISO-8601 date-time")
    backfill.set_defaults(handler=cmd_backfill)

    cancel = commands.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id", type=int)
    cancel.set_defaults(handler=lambda args: _print_run(runs.cancel(args.run_id)))

    rerun = commands.add_parser("rerun", help="rerun the failed tasks of a run")
    rerun.add_argument("run_id", type=int)
    rerun.set_defaults(
        handler=lambda args: _print_json({"cleared": runs.rerun_failed(args.run_id)})
    )

    clear = commands.add_parser("clear", help="rerun a finished task instance")
    clear.add_argument("run_id", type=int)
    clear.add_argument("task_id")
    clear.add_argument("--downstream", action="store_true", help="and everything after it")
    clear.set_defaults(
        handler=lambda args: _print_json(
            {"cleared": runs.clear(args.run_id, args.task_id, args.downstream)}
        )
    )

    mark = commands.add_parser("mark", help="mark a task instance success or failed")
    mark.add_argument("run_id", type=int)
    mark.add_argument("task_id")
    mark.add_argument("state", choices=("success", "failed"))
    mark.set_defaults(
        handler=lambda args: _print_json(
            {
                "task_id": args.task_id,
                "state": runs.mark(args.run_id, args.task_id, args.state).state,
            }
        )
    )

    prune = commands.add_parser("prune", help="delete finished runs older than an age")
    prune.add_argument(
        "--older-than", required=True, type=retention.parse_age, help="30d, 12h, 90m"
    )
    prune.add_argument("--batch", type=int, default=500, help="runs deleted per transaction")
    prune.set_defaults(
        handler=lambda args: _print_json(
            {"deleted": retention.prune(args.older_than, utcnow(), args.batch)}
        )
    )

    commands.add_parser("dev", help="run web, worker and clock together (make run)")
    return parser


def _print_json(data) -> int:
    print(json.dumps(data))
    return 0


def _print_run(run) -> int:
    return _print_json({"run_id": run.id, "state": run.state, "url": f"/api/v1/runs/{run.id}"})


def cmd_pause(args, paused: bool) -> int:
    dag = dags.set_paused(args.dag_id, {"paused": paused})
    return _print_json({"dag_id": dag.dag_id, "paused": dag.paused})


def cmd_backfill(args) -> int:
    start = runs.parse_date(args.start, "start")
    end = runs.parse_date(args.end, "end")
    created = runs.backfill(args.dag_id, start, end)
    return _print_json({"created": len(created), "run_ids": [run.id for run in created]})


def cmd_migrate(_args) -> int:
    before, after = migrations.migrate()
    print(f"schema at version {after}" + ("" if before == after else f" (was {before})"))
    return 0


def cmd_token_create(args) -> int:
    print(auth.create_token(args.role, args.name, args.expires_in_days))
    return 0


def cmd_token_list(_args) -> int:
    from app.models import ApiToken

    for row in ApiToken.select().order_by(ApiToken.id):
        state = "revoked" if row.revoked_at else "active"
        print(f"{row.id:>4}  {row.role:<8}  {state:<7}  {row.name}")
    return 0


def cmd_deploy(args) -> int:
    for line in deploy_path(args.path):
        print(line)
    return 0


def cmd_trigger(args) -> int:
    run, _ = runs.trigger(args.dag_id, args.conf)
    return _print_run(run)


def deploy_path(path: Path) -> list[str]:
    """Deploy a function file, a DAG spec file, or a folder of them (functions first, since
    DAGs name them); returns one line per file."""
    if not path.exists():
        raise BrisaError(f"no such file or folder: {path}")
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    lines = [_deploy_function(f) for f in files if f.suffix == ".py" and not f.name.startswith("_")]
    lines += [_deploy_dag(f) for f in files if f.suffix == ".json"]
    return lines


def _deploy_function(path: Path) -> str:
    payload = {"name": path.stem, "source": path.read_text()}
    version, created = functions.deploy(payload, current())
    return f"function {path.stem} v{version.version}" + ("" if created else " (unchanged)")


def _deploy_dag(path: Path) -> str:
    try:
        payload = json.loads(path.read_text())
    except ValueError as exc:
        raise BrisaError(f"{path}: malformed JSON: {exc}") from None
    dag_id = payload.get("dag_id") if isinstance(payload, dict) else None
    if not isinstance(dag_id, str):
        raise BrisaError(f"{path}: a DAG spec needs a dag_id")
    _dag, version, changed = dags.put(dag_id, payload)
    return f"dag {dag_id} v{version.version}" + ("" if changed else " (unchanged)")
