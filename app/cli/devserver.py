"""``make run``: the whole system on one machine, from the Procfile.

Runs ``release``, deploys the examples under functions/ into an empty database (as
``python -m app deploy --local functions`` does; BRISA_LOAD_EXAMPLES=0 skips it), then starts
``web``, ``worker`` and ``clock`` exactly as the Procfile writes them, prefixing their
output, and stops them all on Ctrl-C or when one of them dies.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from app.cli import authoring, deploy_plan
from app.cli.terminal import Terminal
from app.config import PROJECT_ROOT, current

PROCESSES = ("web", "worker", "clock")
EXAMPLES = PROJECT_ROOT / "functions"


def read_procfile(path: Path = PROJECT_ROOT / "Procfile") -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def start(command: str, env: dict, name: str | None = None, output=None) -> subprocess.Popen:
    """Start one Procfile command in a shell (so ${VAR:-default} expands), in its own
    process group; with ``name``, its output is prefixed and echoed, else it goes to
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
        threading.Thread(target=_echo, args=(name, process), daemon=True).start()
    return process


def _echo(name: str, process: subprocess.Popen) -> None:
    for line in process.stdout:
        sys.stdout.write(f"{name:>6} | {line}")
        sys.stdout.flush()


def stop(processes: list[subprocess.Popen], grace_s: float = 10) -> None:
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


def _admin_token(settings) -> str:
    """BRISA_ADMIN_TOKEN, or one kept in BRISA_VAR_DIR (var/) for the embedded default."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.var_dir / "admin_token"
    if not path.exists():
        path.write_text("brisa_" + secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    settings = current()
    env = dict(os.environ, BRISA_ADMIN_TOKEN=_admin_token(settings), PORT=str(settings.port))
    # The Procfile says python, gunicorn, huey_consumer: this Python's, venv or not.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    procfile = read_procfile()
    if subprocess.run(["/bin/sh", "-c", procfile["release"]], cwd=PROJECT_ROOT, env=env).returncode:
        return 1
    if settings.load_examples:
        _deploy_examples()
    processes = [start(procfile[name], env, name) for name in PROCESSES]
    _print_banner(settings, env["BRISA_ADMIN_TOKEN"])
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a process exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)


def _interrupt(*_args):
    raise KeyboardInterrupt


def _deploy_examples() -> None:
    """On an empty database, the examples under functions/, exactly as ``python -m app
    deploy --local functions`` deploys them (the web process is not up yet)."""
    bundle = authoring.collect(EXAMPLES)
    with deploy_plan.local_target() as target:
        if not target.functions():  # never overwrite what was deployed since
            deploy_plan.deploy(bundle, target, Terminal())


def _print_banner(settings, token: str) -> None:
    url = f"http://127.0.0.1:{settings.port}"
    print(
        f"\nBrisa is running on {_storage(settings)}\n"
        f"  UI:    {url}/ (sign in with the token)\n"
        f"  API:   {url}/api/v1/dags\n"
        f"  Token: {_token_origin(settings)}\n"
        f"  Shell: export BRISA_URL={url} BRISA_TOKEN={token}\n"
        f"         {_python()} -m app dags list\n"
        f'         curl -H "Authorization: Bearer $BRISA_TOKEN" $BRISA_URL/api/v1/dags\n'
        f"  Stop:  Ctrl-C\n",
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
