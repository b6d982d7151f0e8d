"""``make run`` (``python -m app dev``): the whole system on one machine, from the Procfile.

In order: checks that web's address is free (``BRISA_BIND``, here 127.0.0.1 unless set:
the sign-in is plain HTTP; and ``PORT``); runs ``release``; deploys the examples under
functions/ into an empty database (as ``python -m app deploy --local functions`` does;
BRISA_LOAD_EXAMPLES=0 skips it); starts ``web``, ``worker`` and ``clock`` exactly as the
Procfile writes them; once web answers, prints where everything is. Then the terminal shows
a line per failed try and per finished run (app/cli/run_feed.py) and what the processes log
at ``BRISA_LOG_LEVEL`` or above (here ``warning`` unless set; ``--verbose``, which ``make run
VERBOSE=1`` passes: ``info``), prefixed with the process's name, warnings and errors in
colour. It stops them all on Ctrl-C or when one of them dies.
"""

import errno
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NoReturn

from app.cli import authoring, deploy_plan, local_db
from app.cli.errors import CliError, UsageError
from app.cli.run_feed import RunFeed
from app.cli.terminal import Terminal
from app.config import PROJECT_ROOT
from app.store import db

PROCESSES = ("web", "worker", "clock")
EXAMPLES = PROJECT_ROOT / "functions"
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# The level of a log line's record, as huey ("[time] INFO:huey:..."), gunicorn ("[time]
# [pid] [INFO] ...") and BRISA_LOG_JSON ('"level": "info"') write it; or a traceback's start.
RECORD = re.compile(
    r'^\[[^]]*\] (?:\[\d+\] )?\[?(?P<level>[A-Z]+)[]:]|"level": "(?P<json>\w+)"|^(?P<tb>Traceback) '
)
POLL_S = 0.5  # how often the dev server looks at its processes and the runs
READY_TIMEOUT_S = 60  # web's first answer, after it started


def read_procfile(path: Path = PROJECT_ROOT / "Procfile") -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def start(
    command: str, env: dict, name: str | None = None, output=None, threshold: int = 0
) -> subprocess.Popen:
    """Start one Procfile command in a shell (so ${VAR:-default} expands), in its own
    process group; with ``name``, its output is echoed prefixed with it, leaving out records
    below the ``threshold`` log level (app/cli/devserver.py's `Echo`), else it goes to
    ``output`` (a file; None: this process's own)."""
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"exec {command}"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE if name else output,
        stderr=subprocess.STDOUT if name or output else None,
        start_new_session=True,
        text=True,
    )
    if name:
        echo = Echo(name, threshold, Terminal())
        threading.Thread(target=echo.follow, args=(process,), daemon=True).start()
    return process


class Echo:
    """One process's output on this terminal, each line prefixed with the process's name.
    A line that starts a log record below ``threshold`` is left out, with the lines that
    continue it (a traceback, a list); warnings are painted yellow, errors red."""

    def __init__(self, name: str, threshold: int, term: Terminal):
        self.prefix, self.threshold, self.term = f"{name:>6} | ", threshold, term
        self.shown, self.colour = True, ""

    def follow(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            text = self.shown_line(line.rstrip("\n"))
            if text is not None:
                sys.stdout.write(f"{text}\n")
                sys.stdout.flush()

    def shown_line(self, line: str) -> str | None:
        """The line as shown, or None if it is left out."""
        level = record_level(line)
        if level is not None:
            self.shown = level >= self.threshold
            warning, error = level >= LEVELS["warning"], level >= LEVELS["error"]
            self.colour = "error" if error else "warning" if warning else ""
        if not self.shown:
            return None
        return self.prefix + (self.term.paint(line, self.colour) if self.colour else line)


def record_level(line: str) -> int | None:
    """The level (logging's numbers) of the record ``line`` starts; None if it starts none
    (it continues the one before). A traceback's first line counts as an error."""
    match = RECORD.search(line[:120])
    if match is None:
        return None
    if match["tb"]:
        return LEVELS["error"]
    return LEVELS.get((match["level"] or match["json"]).lower())


def stop(processes: list[subprocess.Popen], grace_s: float | None = None) -> None:
    """SIGTERM to each process's group, SIGKILL to what still runs after ``grace_s``
    (default: the worker's BRISA_SHUTDOWN_TIMEOUT and 5 s more, so a try it lets finish or
    hands back is never cut short)."""
    if grace_s is None:
        grace_s = shutdown_timeout_s() + 5
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def shutdown_timeout_s() -> float:
    """The worker's --shutdown-timeout, as the Procfile's ${BRISA_SHUTDOWN_TIMEOUT:-25}."""
    try:
        return float(os.environ.get("BRISA_SHUTDOWN_TIMEOUT") or 25)
    except ValueError:
        return 25.0


def main(verbose: bool = False) -> int:
    """Run until Ctrl-C or SIGTERM (0); 1 if the release step fails; CliError if the address
    is taken, a process exits, or web does not answer."""
    settings = local_db.settings()
    env = environment(settings.port, verbose)
    threshold = log_threshold(env["BRISA_LOG_LEVEL"])
    check_address(env["BRISA_BIND"], settings.port)
    procfile = read_procfile()
    if subprocess.run(["/bin/sh", "-c", procfile["release"]], cwd=PROJECT_ROOT, env=env).returncode:
        return 1  # the release step said why
    if settings.load_examples:
        _deploy_examples(verbose)
    env["BRISA_ADMIN_TOKEN"] = _admin_token(settings)
    signal.signal(signal.SIGTERM, _interrupt)
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name in PROCESSES:
            processes[name] = start(procfile[name], env, name, threshold=threshold)
        url = web_url(env["BRISA_BIND"], settings.port)
        wait_until_serving(url, processes)
        _print_banner(settings, url, env, verbose)
        _watch(processes)
    except KeyboardInterrupt:
        return 0
    finally:
        _shut_down(processes)


def environment(port: int, verbose: bool) -> dict:
    """The processes' environment: this one's, with BRISA_BIND and BRISA_LOG_LEVEL given the
    dev server's defaults, and this Python's folder first on PATH (the Procfile says python,
    gunicorn, huey_consumer: this Python's, venv or not)."""
    env = dict(os.environ, PORT=str(port))
    env["BRISA_BIND"] = env.get("BRISA_BIND") or "127.0.0.1"
    env["BRISA_LOG_LEVEL"] = env.get("BRISA_LOG_LEVEL") or ("info" if verbose else "warning")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def log_threshold(level: str) -> int:
    """BRISA_LOG_LEVEL's number; UsageError for a name logging does not have."""
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise UsageError(
            f"BRISA_LOG_LEVEL={level!r}: expected one of {', '.join(LEVELS)}"
        ) from None


def check_address(host: str, port: int) -> None:
    """CliError unless web can listen on ``host:port`` (as gunicorn does: SO_REUSEADDR)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except socket.gaierror:
        raise UsageError(f"BRISA_BIND={host!r} is not an address of this machine") from None
    except OverflowError:
        raise UsageError(f"PORT={port} is not a port number (1-65535)") from None
    except OSError as exc:
        raise _unavailable(host, port, exc) from None


def _unavailable(host: str, port: int, exc: OSError) -> CliError:
    if exc.errno == errno.EADDRINUSE:
        return CliError(f"port {port} is in use on {host}: set PORT (make run PORT={port + 1})")
    if exc.errno == errno.EADDRNOTAVAIL:
        return UsageError(f"BRISA_BIND={host!r} is not an address of this machine")
    if exc.errno == errno.EACCES:
        return CliError(f"port {port} needs privileges to listen on: set PORT above 1023")
    return CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def web_url(host: str, port: int) -> str:
    """The address to open: a wildcard bind (0.0.0.0, ::) is reached at 127.0.0.1."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def wait_until_serving(url: str, processes: dict, timeout: float = READY_TIMEOUT_S) -> None:
    """Until web answers /healthz; CliError if a process exits first, or at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        _check_running(processes)
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an answer, even an error: web is serving
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise CliError(f"web did not answer at {url} within {timeout:g}s")
        time.sleep(0.1)


def _check_running(processes: dict) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            raise CliError(
                f"{name} exited (code {process.returncode}); its lines above say why, and "
                "the other processes were stopped"
            )


def _watch(processes: dict) -> NoReturn:
    """Until a process exits (CliError): a line per failed try and finished run."""
    term = Terminal()
    db.ensure_bound()
    with db.db.connection_context():
        feed = RunFeed()
    while True:
        _check_running(processes)
        try:
            with db.db.connection_context():
                lines = feed.poll()
        except local_db.DATABASE_ERRORS:
            lines = []  # busy or away for a moment: the processes' errors say so
        for line in lines:
            print(f"{'runs':>6} | {term.paint(line.text, line.colour)}", flush=True)
        time.sleep(POLL_S)


def _interrupt(*_args):
    raise KeyboardInterrupt


def _shut_down(processes: dict) -> None:
    """Stop the processes, deaf to a second Ctrl-C or SIGTERM (which would leave them
    running: each is in its own session); ``stop`` kills what outlives its grace."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"stopping {', '.join(processes)}", file=sys.stderr, flush=True)
    stop(list(processes.values()))


def _admin_token(settings) -> str:
    """BRISA_ADMIN_TOKEN, or one kept in BRISA_VAR_DIR (var/) for the embedded default."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.var_dir / "admin_token"
    if not path.exists():
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("brisa_" + secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _deploy_examples(verbose: bool) -> None:
    """On an empty database, the examples under functions/, exactly as ``python -m app
    deploy --local functions`` deploys them (the web process is not up yet): the plan and
    each step with ``verbose``, else one line."""
    bundle = authoring.collect(EXAMPLES)
    with deploy_plan.local_target() as target:
        if target.functions():  # never overwrite what was deployed since
            return
        # A Terminal for --json output prints no plan: deploy() is quiet with it.
        deploy_plan.deploy(bundle, target, Terminal(as_json=not verbose))
    if not verbose:
        folder = EXAMPLES.relative_to(PROJECT_ROOT)
        counts = f"{len(bundle.functions)} functions and {len(bundle.dags)} DAGs"
        print(f"deployed the examples in {folder}/: {counts}", flush=True)


def _print_banner(settings, url: str, env: dict, verbose: bool) -> None:
    host = env["BRISA_BIND"]
    everywhere = host in ("0.0.0.0", "::")
    print(
        f"\nBrisa is running on {_storage(settings)}\n"
        f"  UI:    {url}/ (sign in with the token)\n"
        f"  API:   {url}/api/v1/dags\n"
        + (f"  Bind:  every interface (BRISA_BIND={host}), over plain HTTP\n" if everywhere else "")
        + f"  Token: {_token_origin(settings)}\n"
        f"  Shell: export BRISA_URL={url} BRISA_TOKEN={env['BRISA_ADMIN_TOKEN']}\n"
        f"         {_python()} -m app dags list\n"
        f'         curl -H "Authorization: Bearer $BRISA_TOKEN" $BRISA_URL/api/v1/dags\n'
        + ("" if verbose else "  Logs:  runs, failures, warnings; every line: make run VERBOSE=1\n")
        + "  Stop:  Ctrl-C\n",
        flush=True,
    )


def _storage(settings) -> str:
    """Where the metadata and the queue are, with real paths for the embedded default."""
    database = (
        f"SQLite at {settings.database_url.removeprefix('sqlite:///')}"
        if settings.embedded
        else "DATABASE_URL"
    )
    queue = "REDIS_URL" if settings.redis_url else f"huey's SQLite queue at {settings.queue_path}"
    embedded_default = settings.embedded and not settings.redis_url
    return f"{'the embedded default: ' if embedded_default else ''}{database}, {queue}"


def _token_origin(settings) -> str:
    if settings.admin_token:
        return "BRISA_ADMIN_TOKEN"
    return f"kept in {settings.var_dir / 'admin_token'}"


def _python() -> str:
    """How to run this Python from the project's folder: the venv's, as ``make run`` does."""
    executable = Path(sys.executable)
    if executable.is_relative_to(PROJECT_ROOT):
        return str(executable.relative_to(PROJECT_ROOT))
    return "python"
