"""``make run``: the whole system on one machine, from the Procfile.

Runs ``release``, deploys the examples under functions/ on a fresh embedded database, then
starts ``web``, ``worker`` and ``clock`` exactly as the Procfile writes them, prefixing their
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

from app.config import PROJECT_ROOT, current

PROCESSES = ("web", "worker", "clock")


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
    """BRISA_ADMIN_TOKEN, or one kept under var/ for the embedded default."""
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
    procfile = read_procfile()
    if subprocess.run(["/bin/sh", "-c", procfile["release"]], cwd=PROJECT_ROOT, env=env).returncode:
        return 1
    if settings.load_examples:
        _deploy_examples()
    processes = [start(procfile[name], env, name) for name in PROCESSES]
    _print_banner(settings.port, env["BRISA_ADMIN_TOKEN"], settings.embedded)
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
    """Straight through the core (the web process is not up yet), from the same files the
    CLI's deploy reads: functions first, then the DAGs that name them."""
    from app import authoring, dags, db, functions
    from app.models import Function

    bundle = authoring.collect(PROJECT_ROOT / "functions")
    db.ensure_bound()
    with db.db.connection_context():
        if Function.select().exists():
            return
        for name, payload in bundle.functions.items():
            version, _ = functions.deploy(payload, current())
            print(f"deployed function {name} v{version.version}")
        for dag_id, spec in bundle.dags.items():
            _dag, version, _ = dags.put(dag_id, spec)
            print(f"deployed dag {dag_id} v{version.version}")


def _print_banner(port: int, token: str, embedded: bool) -> None:
    backend = (
        "embedded default (SQLite + huey SQLite queue under var/)"
        if embedded
        else "DATABASE_URL + REDIS_URL"
    )
    print(
        f"\nBrisa is running on {backend}\n"
        f"  UI:    http://127.0.0.1:{port}/ (sign in with the token)\n"
        f"  API:   http://127.0.0.1:{port}/api/v1/dags\n"
        f"  Token: export TOKEN={token}\n"
        f'         curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{port}/api/v1/dags\n'
        f"  Stop:  Ctrl-C\n",
        flush=True,
    )
