"""``python -m app``: Brisa's command line.

The operator commands (migrate, token, prune, dev, and deploy --local) work on the database
this process is configured with (app/cli/local_db.py: only migrate creates it). The others
talk to a Brisa over HTTP, at ``BRISA_URL`` with the token in ``BRISA_TOKEN``, so they work
the same against a laptop and a production deployment. Every failure is one line on stderr
saying what to do (app/cli/errors.py), never a traceback. Exit codes: 0 ok, 1 failed (the
server, the database, a file, a run that failed), 2 a usage error (arguments or environment
variables), 130 interrupted.
"""

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from app.cli import authoring, deploy_plan, local_db
from app.cli.client import Client, default_url
from app.cli.errors import CliError, Interrupted
from app.cli.terminal import Terminal, duration, shown_json, timestamp
from app.domain import strict_json
from app.domain.errors import BrisaError
from app.domain.states import RUN_FINISHED, TASK_FINISHED, TaskState
from app.domain.timeutil import utcnow
from app.engine import auth, retention
from app.store import migrations

TASK_OK = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})
POLL_S = 0.3
RESULT_WIDTH = 60  # characters of a task's result JSON a run's table shows


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)  # a usage error exits 2 here, in one line
    if getattr(args, "local", False) and (args.url or args.token):
        parser.error("deploy --local writes to DATABASE_URL: --url and --token are for HTTP")
    try:
        return args.handler(args)
    except (CliError, BrisaError) as exc:
        _print_error(exc)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return Interrupted.exit_code
    except BrokenPipeError:  # `... | head`: stop quietly, and quiet the exit's own flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _print_error(exc: CliError | BrisaError) -> None:
    """One line; then a line per problem the API listed, unless the line already says each."""
    kind = "interrupted" if isinstance(exc, Interrupted) else "error"
    print(f"{kind}: {exc.message}", file=sys.stderr)
    details = exc.details if isinstance(exc.details, list) else []
    problems = [
        f"{d.get('field') or '(body)'}: {d.get('message')}" for d in details if isinstance(d, dict)
    ]
    if not all(problem in exc.message for problem in problems):
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)


# Deploy --------------------------------------------------------------------------------


def cmd_deploy(args) -> int:
    """Show what the path would change, then apply it: over HTTP, or with --local through
    the core on this process's database (app/cli/deploy_plan.py)."""
    bundle = authoring.collect(args.path)  # a file that does not load stops here
    term = Terminal(args.json)
    with _deploy_target(args) as target:
        outcome = deploy_plan.deploy(bundle, target, term, args.dry_run)
    return term.emit(outcome, lambda _outcome: None)


@contextmanager
def _deploy_target(args):
    """--local: this process's database, while the deploy runs; otherwise Brisa's API."""
    if args.local:
        with deploy_plan.local_target() as target:
            yield target
        return
    client = _client(args)
    with answers_of(client):
        yield deploy_plan.Remote(client)


# DAGs ----------------------------------------------------------------------------------


def cmd_dags_list(args, client: Client, term: Terminal) -> int:
    def render(data):
        rows = [
            [
                dag["dag_id"],
                dag["paused"],
                dag["spec"]["schedule"],
                dag["version"],
                dag["last_run"] and dag["last_run"]["run_id"],
                dag["last_run"] and dag["last_run"]["state"],
                timestamp(dag["next_run_at"]),
            ]
            for dag in data["dags"]
        ]
        headers = ["DAG", "PAUSED", "SCHEDULE", "VERSION", "LAST RUN", "STATE", "NEXT RUN"]
        term.table(headers, rows)

    return term.emit(client.get("/dags"), render)


def cmd_pause(args, client: Client, term: Terminal, paused: bool) -> int:
    data = client.patch(f"/dags/{args.dag_id}", {"paused": paused})
    state = "paused" if data["paused"] else "unpaused"
    return term.emit(data, lambda d: term.line(f"{d['dag_id']}: {state}"))


def cmd_trigger(args, client: Client, term: Terminal) -> int:
    body = {"conf": args.conf, "logical_date": args.logical_date}
    body = {key: value for key, value in body.items() if value is not None}
    run = client.post(f"/dags/{args.dag_id}/runs", body)
    if not args.wait:
        message = f"run {run['run_id']} of {run['dag_id']}: {run['state']} ({run['url']})"
        return term.emit(run, lambda r: term.line(message))
    return _finish(wait_for_run(client, term, run["run_id"], args.timeout), term)


def cmd_backfill(args, client: Client, term: Terminal) -> int:
    data = client.post(f"/dags/{args.dag_id}/backfill", {"start": args.start, "end": args.end})
    ids = " ".join(str(run["run_id"]) for run in data["runs"])
    return term.emit(data, lambda d: term.line(f"created {d['created']} run(s) {ids}".rstrip()))


# Runs ----------------------------------------------------------------------------------


def cmd_runs_list(args, client: Client, term: Terminal) -> int:
    data = client.get(f"/dags/{args.dag_id}/runs", state=args.state, limit=args.limit)

    def render(data):
        rows = [
            [r["run_id"], r["state"], r["run_type"], timestamp(r["logical_date"])]
            + [timestamp(r["started_at"]), timestamp(r["finished_at"])]
            for r in data["runs"]
        ]
        term.table(["RUN", "STATE", "TYPE", "LOGICAL DATE", "STARTED", "FINISHED"], rows)

    return term.emit(data, render)


def cmd_runs_show(args, client: Client, term: Terminal) -> int:
    if args.wait:
        return _finish(wait_for_run(client, term, args.run_id, args.timeout), term)
    return term.emit(client.get(f"/runs/{args.run_id}"), lambda run: _render_run(run, term))


def _render_run(run: dict, term: Terminal) -> None:
    what = run["dag_id"] or f"function {run['function']}"
    version = f" v{run['dag_version']}" if run["dag_version"] else ""
    state = term.paint(run["state"], run["state"])
    term.line(f"run {run['run_id']}  {what}{version}  {run['run_type']}  {state}")
    conf = "-" if run["conf"] is None else shown_json(run["conf"])
    term.line(f"logical date {timestamp(run['logical_date'])}  conf {conf}")
    rows = [
        [t["task_id"], t["state"], f"{t['try_number']}/{t['max_tries']}"]
        + [f"{t['function']} v{t['function_version']}", duration(t["duration"])]
        + [_result(t["result"]), t["error"]]
        for t in run["tasks"]
    ]
    term.table(["TASK", "STATE", "TRY", "FUNCTION", "DURATION", "RESULT", "ERROR"], rows)


def _result(result) -> str | None:
    """A task's result as JSON, non-ASCII as text, cut to RESULT_WIDTH characters."""
    if result is None:
        return None
    text = shown_json(result)
    return text if len(text) <= RESULT_WIDTH else text[: RESULT_WIDTH - 3] + "..."


def wait_for_run(client: Client, term: Terminal, run_id: int, timeout: float) -> dict:
    """Poll the run until it finishes, showing its task states as they change. CliError
    when ``timeout`` seconds pass first; Interrupted on Ctrl-C (the run goes on)."""
    deadline = time.monotonic() + timeout
    again = f"`python -m app runs show {run_id} --wait` waits again"
    try:
        while True:
            run = client.get(f"/runs/{run_id}")
            term.progress(f"run {run_id} {run['state']}: {_task_counts(run)}")
            if run["state"] in RUN_FINISHED:
                return run
            if time.monotonic() > deadline:
                raise CliError(f"run {run_id} is still {run['state']}; stopped waiting ({again})")
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        raise Interrupted(f"stopped waiting; run {run_id} goes on ({again})") from None
    finally:
        term.end_progress()


def _task_counts(run: dict) -> str:
    """1 running, 3 success: how many of the run's tasks are in each state."""
    counts: dict[str, int] = {}
    for task in run["tasks"]:
        counts[task["state"]] = counts.get(task["state"], 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _finish(run: dict, term: Terminal) -> int:
    """Show a finished run; exit 1 unless it succeeded."""
    term.emit(run, lambda r: _render_run(r, term))
    return 0 if run["state"] == "success" else 1


def cmd_logs(args, client: Client, term: Terminal) -> int:
    """Print a try's log; with --follow, keep printing new lines until the task finishes
    (following its next try when it is retried), and exit 1 if it did not succeed."""
    path = f"/runs/{args.run_id}/tasks/{args.task_id}"
    try_number, offset = args.try_number, 0
    while True:
        page = client.get(f"{path}/logs", **{"try": try_number, "offset": offset})
        try_number, offset = page["try_number"], page["next_offset"]
        sys.stdout.write(page["text"])
        sys.stdout.flush()
        if not args.follow:
            return 0
        finished = page["state"] in TASK_FINISHED  # read before the log: the log is complete
        if args.try_number is None and (finished or not page["text"]):
            latest = client.get(path)["try_number"]  # a retry or a clear starts a new try
            if latest > try_number:
                try_number, offset = latest, 0
                term.line(term.paint(f"--- try {latest} ---", "none"))
                continue
        if finished:
            return 0 if page["state"] in TASK_OK else 1
        time.sleep(POLL_S)


def cmd_cancel(args, client: Client, term: Terminal) -> int:
    run = client.post(f"/runs/{args.run_id}/cancel")
    return term.emit(run, lambda r: term.line(f"run {r['run_id']}: {r['state']}"))


def cmd_rerun(args, client: Client, term: Terminal) -> int:
    data = client.post(f"/runs/{args.run_id}/rerun")
    return term.emit(data, lambda d: _print_cleared(d, term))


def cmd_clear(args, client: Client, term: Terminal) -> int:
    downstream = "true" if args.downstream else None
    data = client.post(f"/runs/{args.run_id}/tasks/{args.task_id}/clear", downstream=downstream)
    return term.emit(data, lambda d: _print_cleared(d, term))


def _print_cleared(data: dict, term: Terminal) -> None:
    cleared = ", ".join(data["cleared"]) or "nothing"
    term.line(f"run {data['run']['run_id']}: cleared {cleared}")


def cmd_mark(args, client: Client, term: Terminal) -> int:
    path = f"/runs/{args.run_id}/tasks/{args.task_id}/mark"
    data = client.post(path, {"state": args.state})
    message = f"run {args.run_id}: {data['task_id']} marked {data['state']}"
    return term.emit(data, lambda d: term.line(message))


# Functions -----------------------------------------------------------------------------


def cmd_functions_list(args, client: Client, term: Terminal) -> int:
    def render(data):
        rows = [
            [f["name"], f["version"], f["runtime"], f["handler"], timestamp(f["created_at"])]
            for f in data["functions"]
        ]
        term.table(["FUNCTION", "VERSION", "RUNTIME", "HANDLER", "DEPLOYED"], rows)

    return term.emit(client.get("/functions"), render)


def cmd_functions_show(args, client: Client, term: Terminal) -> int:
    """A version's facts (the latest unless --version), its packages, and with --build-log how
    its environment was built."""
    number = args.version or client.get(f"/functions/{args.name}")["latest_version"]
    version = client.get(f"/functions/{args.name}/versions/{number}")

    def render(v):
        term.line(f"function {v['name']} v{v['version']}  {v['runtime']}  handler {v['handler']}")
        term.line(f"timeout {v['timeout']:g}s  memory {v['memory_mb']} MiB  {v['isolation']}")
        term.line(f"packages {' '.join(v['packages']) or '-'}")
        built = f"built in {v['build_s']:.2f}s" if v["build_log"] else "found built"
        term.line(f"environment {(v['lock_sha256'] or '-')[:12]}  {built} at deploy")
        if args.build_log:
            term.line(v["build_log"] or "(no build log: the environment was already built)")

    return term.emit(version, render)


def cmd_invoke(args, client: Client, term: Terminal) -> int:
    """Run a function now; wait up to --wait seconds for its result (exit 1 if it failed)."""
    server_wait = min(args.wait, 60)  # the API waits at most 60 s; the rest is polled
    run = client.post(f"/functions/{args.name}/invoke", args.conf, wait=server_wait or None)
    if run["state"] not in RUN_FINISHED:
        if not args.wait:
            message = f"run {run['run_id']} of {args.name}: {run['state']} ({run['url']})"
            return term.emit(run, lambda r: term.line(message))
        run = wait_for_run(client, term, run["run_id"], args.wait - server_wait)
    task = run["tasks"][0]
    if term.as_json:
        term.line(shown_json(run, indent=2))
    elif run["state"] == "success":
        term.line(shown_json(task["result"]))
    if run["state"] != "success":
        raise CliError(f"run {run['run_id']} {run['state']}: {task['error']}")
    return 0


# Operator commands: this process's database --------------------------------------------


def _local(command, creates: bool = False):
    """Run ``command(args)`` on this process's database, which it must find migrated unless
    it ``creates`` it (app/cli/local_db.py)."""

    def run(args) -> int:
        with local_db.connected(creates):
            return command(args)

    return run


def cmd_migrate(_args) -> int:
    before, after = migrations.migrate()
    print(f"schema at version {after}" + ("" if before == after else f" (was {before})"))
    return 0


def cmd_token_create(args) -> int:
    print(auth.create_token(args.role, args.name, args.expires_in_days))
    return 0


def cmd_token_list(_args) -> int:
    from app.store.models import ApiToken

    for row in ApiToken.select().order_by(ApiToken.id):
        state = "revoked" if row.revoked_at else "active"
        print(f"{row.id:>4}  {row.role:<8}  {state:<7}  {row.name}")
    return 0


def cmd_token_revoke(args) -> int:
    print(json.dumps({"revoked": auth.revoke(args.token_id).id}))
    return 0


def cmd_prune(args) -> int:
    print(json.dumps({"deleted": retention.prune(args.older_than, utcnow(), args.batch)}))
    return 0


def cmd_dev(args) -> int:
    from app.cli import devserver

    return devserver.main(args.verbose)


# The parser ----------------------------------------------------------------------------


def _client(args) -> Client:
    """BRISA_URL and BRISA_TOKEN, or --url and --token."""
    source = "--url" if args.url else "BRISA_URL" if os.environ.get("BRISA_URL") else "PORT"
    token = args.token or os.environ.get("BRISA_TOKEN")
    return Client(args.url or default_url(), token, source=source)


def _remote(command):
    """Run ``command(args, client, terminal)`` against Brisa's API."""

    def run(args) -> int:
        client = _client(args)
        with answers_of(client):
            return command(args, client, Terminal(args.json))

    return run


@contextmanager
def answers_of(client: Client):
    """An answer without a field the command reads is not from a Brisa of this version: say
    so, rather than fail on the missing key."""
    try:
        yield
    except (LookupError, TypeError) as exc:
        missing = f" (no {exc})" if isinstance(exc, KeyError) else ""
        raise CliError(
            f"{client.url} answered, but not as Brisa's API does{missing}: is BRISA_URL the "
            "address of a Brisa of this version?"
        ) from None


def _json_value(text: str):
    try:
        return strict_json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def arg(*flags, **options) -> tuple:
    return flags, options


DAG_ID = arg("dag_id", help="the DAG's id")
RUN_ID = arg("run_id", type=int, help="the run's id")
TASK_ID = arg("task_id", help="the task's id in the run")

DAG_COMMANDS = {
    "list": (cmd_dags_list, "list DAGs with their last and next run", []),
    "pause": (
        lambda a, c, t: cmd_pause(a, c, t, True),
        "pause a DAG: no more scheduled runs",
        [DAG_ID],
    ),
    "unpause": (lambda a, c, t: cmd_pause(a, c, t, False), "unpause a DAG", [DAG_ID]),
    "trigger": (
        cmd_trigger,
        "start a run of a DAG; with --wait, follow it and exit 1 unless it succeeds",
        [
            DAG_ID,
            arg("--conf", type=_json_value, metavar="JSON", help="the run's conf"),
            arg("--logical-date", metavar="ISO", help="ISO-8601 date-time (default: now)"),
            arg("--wait", action="store_true", help="wait for the run, showing its progress"),
            arg("--timeout", type=float, default=3600, metavar="S", help="default 3600"),
        ],
    ),
    "backfill": (
        cmd_backfill,
        "create a run for every due time in [start, end]",
        [
            DAG_ID,
            arg("--start", required=True, metavar="ISO", help="ISO-8601 date-time"),
            arg("--end", required=True, metavar="ISO", help="ISO-8601 date-time"),
        ],
    ),
}
RUN_COMMANDS = {
    "list": (
        cmd_runs_list,
        "list a DAG's runs, newest first",
        [
            DAG_ID,
            arg("--state", help="only runs in this state"),
            arg("--limit", type=int, default=25, help="how many (default 25, at most 100)"),
        ],
    ),
    "show": (
        cmd_runs_show,
        "show a run and its task instances; with --wait, once it has finished",
        [
            RUN_ID,
            arg("--wait", action="store_true", help="wait for the run; exit 1 unless it succeeds"),
            arg("--timeout", type=float, default=3600, metavar="S", help="default 3600"),
        ],
    ),
    "logs": (
        cmd_logs,
        "print a task's log; --follow prints new lines until the task finishes",
        [
            RUN_ID,
            TASK_ID,
            arg("--try", dest="try_number", type=int, metavar="N", help="default: the latest"),
            arg("-f", "--follow", action="store_true", help="keep printing new lines"),
        ],
    ),
    "cancel": (cmd_cancel, "cancel a run (its running tries are killed)", [RUN_ID]),
    "rerun": (cmd_rerun, "rerun the failed tasks of a run", [RUN_ID]),
    "clear": (
        cmd_clear,
        "rerun a finished task instance",
        [RUN_ID, TASK_ID, arg("--downstream", action="store_true", help="and what follows it")],
    ),
    "mark": (
        cmd_mark,
        "mark a task instance success or failed",
        [RUN_ID, TASK_ID, arg("state", choices=("success", "failed"), help="the new state")],
    ),
}
FUNCTION_COMMANDS = {
    "list": (cmd_functions_list, "list functions (latest versions)", []),
    "show": (
        cmd_functions_show,
        "show a function version: settings, packages, its environment's build",
        [
            arg("name", help="the function's name"),
            arg("--version", type=int, metavar="N", help="this version (default: the latest)"),
            arg("--build-log", action="store_true", help="print how its environment was built"),
        ],
    ),
    "invoke": (
        cmd_invoke,
        "run a function now and print its result (exit 1 if it fails)",
        [
            arg("name", help="the function's name"),
            arg("--conf", type=_json_value, metavar="JSON", help="the run's conf (the event's)"),
            arg(
                "--wait",
                type=float,
                default=60,
                metavar="S",
                help="seconds to wait for the result (default 60; 0: do not wait)",
            ),
        ],
    ),
}
ALIASES = {  # the commands' names before they were grouped
    "trigger": ("dags", DAG_COMMANDS),
    "pause": ("dags", DAG_COMMANDS),
    "unpause": ("dags", DAG_COMMANDS),
    "backfill": ("dags", DAG_COMMANDS),
    "cancel": ("runs", RUN_COMMANDS),
    "rerun": ("runs", RUN_COMMANDS),
    "clear": ("runs", RUN_COMMANDS),
    "mark": ("runs", RUN_COMMANDS),
}

EPILOG = """\
Most commands talk to a Brisa over HTTP:
  BRISA_URL    its address (default http://127.0.0.1:$PORT, $PORT defaulting to 8000)
  BRISA_TOKEN  an API token (python -m app token create --role admin)
migrate, token, prune, dev and deploy --local work on this process's database instead
(DATABASE_URL, else the embedded default under BRISA_VAR_DIR); only migrate creates it.
Exit codes: 0 ok, 1 failed (the server, the database, a file, a failed run), 2 a usage
error (arguments or environment variables), 130 interrupted.
Colour only on a terminal, and never with NO_COLOR set."""


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line that names the command's --help."""

    def error(self, message: str):
        if "required: COMMAND" in message:
            choices = next(a.choices for a in self._actions if a.dest.endswith("command"))
            message = f"a command is needed: one of {', '.join(choices)}"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument("--url", help="Brisa's address (default: $BRISA_URL, else local)")
    group.add_argument("--token", help="an API token (default: $BRISA_TOKEN)")
    group.add_argument("--json", action="store_true", help="print the API's JSON answer")
    return parent


def _add(subparsers, name: str, handler, help_text: str, arguments, parents=()):
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=parents)
    for flags, options in arguments:
        parser.add_argument(*flags, **options)
    parser.set_defaults(handler=handler)
    return parser


def _add_group(subparsers, name: str, help_text: str, commands: dict, remote) -> None:
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    members = group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
    for command, (handler, command_help, arguments) in commands.items():
        _add(members, command, _remote(handler), command_help, arguments, [remote])


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m app",
        description="Brisa: deploy functions and DAGs, run and watch them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    remote = _connection_options()
    _add(
        commands,
        "deploy",
        cmd_deploy,
        "deploy functions (.py), DAG specs (.json) and Python DAG files from a file or "
        "folder: shows what would change, then applies it",
        [
            arg("path", type=Path, help="a file, or a folder (read with its subfolders)"),
            arg("--dry-run", action="store_true", help="only show what would change"),
            arg(
                "--local",
                action="store_true",
                help="write to this process's database (DATABASE_URL) through the core, "
                "not over HTTP: for release steps and one-off containers (no token)",
            ),
        ],
        [remote],
    )
    _add_group(commands, "dags", "list, pause, trigger and backfill DAGs", DAG_COMMANDS, remote)
    _add_group(commands, "runs", "list, show, follow and steer runs", RUN_COMMANDS, remote)
    _add_group(commands, "functions", "list and invoke functions", FUNCTION_COMMANDS, remote)
    _add_operator_commands(commands)
    for name, (group, members) in ALIASES.items():
        handler, _help, arguments = members[name]
        _add(commands, name, _remote(handler), f"same as: {group} {name}", arguments, [remote])
    return parser


def _add_operator_commands(commands) -> None:
    _add(
        commands,
        "migrate",
        _local(cmd_migrate, creates=True),
        "create or upgrade the schema (release)",
        [],
    )
    token = commands.add_parser("token", help="create, list and revoke API tokens")
    token.description = "API tokens, in this process's database (DATABASE_URL)"
    members = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    _add(
        members,
        "create",
        _local(cmd_token_create),
        "print a new token (only its hash is stored)",
        [
            arg("--role", choices=auth.ROLES, default="viewer"),
            arg("--name", default="", help="what the token is for"),
            arg("--expires-in-days", type=float, help="default: never expires"),
        ],
    )
    _add(members, "list", _local(cmd_token_list), "tokens: id, role, state, name", [])
    _add(
        members,
        "revoke",
        _local(cmd_token_revoke),
        "revoke a token by its id",
        [arg("token_id", type=int, help="the id token list shows")],
    )
    _add(
        commands,
        "prune",
        _local(cmd_prune),
        "delete finished runs older than an age, with their logs",
        [
            arg(
                "--older-than",
                required=True,
                type=retention.parse_age,
                help="an age: 30d, 12h, 90m",
            ),
            arg("--batch", type=int, default=500, help="runs deleted per transaction"),
        ],
    )
    _add(
        commands,
        "dev",
        cmd_dev,
        "run release, web, worker and clock together (make run); shows a line per finished "
        "run and per failed try, and the processes' warnings and errors",
        [arg("--verbose", action="store_true", help="every line the processes log (INFO)")],
    )
