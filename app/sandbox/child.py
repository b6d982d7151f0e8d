"""The child side of a try: runs one function in a process of its own.

Imported by the fork server before any try (the warm part of "forked warm"), so it imports
only the standard library. Everything it prints, to file descriptors 1 and 2 (the function's
prints, its logging, its subprocesses, a traceback), goes down one socket to the worker; the
outcome goes down a separate pipe as ``("ok", json_text)`` or ``("error", one_line)``.

A job's ``runtime`` (default ``python``) picks what runs: a python handler here, or the
``http``, ``sql`` and ``shell`` runtimes of app/sandbox/runtimes.py.
"""

import contextlib
import ctypes
import json
import linecache
import logging
import os
import resource
import signal
import sys
import traceback
from types import SimpleNamespace

from app.domain import strict_json
from app.domain.runtime_specs import TemplateError
from app.sandbox import runtimes
from app.sandbox.job import Failed, Job, SkipTask

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # context.log's lines
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"  # a try's PATH: the system's, never the worker's
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PR_SET_CHILD_SUBREAPER = 36
SANDBOX_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def main(jobs, output, outcome) -> None:
    """Wait for the job (forked ahead of time, the child gets it when a try starts), then
    run it in ``job.workdir`` (made, and removed after, by the worker)."""
    os.setsid()  # its own process group: the worker kills the whole group at the end
    _die_with_parent()
    become_subreaper()
    _redirect_output(output)
    try:
        job = jobs.recv()
        jobs.close()
        confine(job)
        result = call(job)
        sys.stdout.flush()  # the output is in the socket before the outcome is sent
        sys.stderr.flush()
        outcome.send_bytes(json.dumps(result).encode())  # JSON: the worker never unpickles it
    except EOFError:  # never given a job: a spare the worker let go
        pass
    finally:
        kill_descendants(os.getpid())  # nothing the try started outlives it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _die_with_parent() -> None:
    """If the worker is killed (SIGKILL, OOM), its fork server exits, and so must this child:
    a try outliving its worker would run on while the clock retries it elsewhere."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _redirect_output(output) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    output.close()
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)


def confine(job: Job) -> None:
    """An environment holding none of Brisa's settings, a scratch directory, memory and CPU
    caps: a forked child's, for its one try."""
    limit_memory(job.memory_mb)
    confine_try(job, {"PATH": SAFE_PATH, "LANG": "C.UTF-8"})


def limit_memory(memory_mb: int) -> None:
    """The address-space limit of this process and what it starts, MiB."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def confine_try(job: Job, base_environ: dict) -> None:
    """What each try starts from: ``base_environ`` with the version's ``env`` and HOME and
    TMPDIR in the try's scratch directory (its working directory too); a CPU-time limit of
    ``job.cpu_s`` more seconds than this process has used; logging to stderr."""
    workdir = job.workdir
    os.environ.clear()
    os.environ.update(base_environ)
    os.environ.update(job.env)
    os.environ.update({"HOME": workdir, "TMPDIR": workdir})
    os.chdir(workdir)
    _limit(resource.RLIMIT_NPROC, job.max_processes)
    _limit(resource.RLIMIT_FSIZE, job.max_file_bytes)
    if job.cpu_s:  # CPU seconds: a busy loop is stopped even between wall-clock checks
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = int(usage.ru_utime + usage.ru_stime + job.cpu_s) + 1
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))
    root = logging.getLogger()
    root.handlers = [logging.StreamHandler(sys.stderr)]
    root.handlers[0].setFormatter(logging.Formatter(LOG_FORMAT))
    root.setLevel(logging.INFO)


def _limit(which: int, soft: int | None) -> None:
    """Set a soft resource limit for this try, within the hard one (None: leave it)."""
    if soft is None:
        return
    hard = resource.getrlimit(which)[1]
    resource.setrlimit(which, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def become_subreaper() -> None:
    """Orphans among this process's descendants (a child that left its process group with
    setpgid or setsid, then lost its parent) become its children, not init's: the worker
    finds and kills every descendant when the try ends (supervisor.kill_tree). A file too
    large fails the write (EFBIG) instead of killing the process (SIGXFSZ)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def kill_descendants(pid: int) -> None:
    """SIGKILL every process descended from ``pid``, also those that left its process group:
    ``pid`` is a subreaper (become_subreaper), so they stay in its tree while it lives. The
    tree is read first, then killed, twice (a fork racing the first pass is caught)."""
    for _ in range(2):
        for descendant in descendants(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(descendant, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (its children, theirs, ...), from /proc."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as listing:
                    children = [int(child) for child in listing.read().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found


def load_handler(source: str, handler: str, filename: str):
    """Execute the function's module and return its handler (raises on any problem)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "brisa_function", "__file__": filename}
    exec(compile(source, filename, "exec"), namespace)
    if handler not in namespace:
        raise LookupError(f"the module defines no {handler!r}")
    if not callable(namespace[handler]):
        raise TypeError(f"{handler!r} is not callable")
    return namespace[handler]


class Context(SimpleNamespace):
    """What a handler gets as ``context``: the run's facts, a logger, and two controls."""

    def skip(self, reason: str = ""):
        raise SkipTask(reason)

    def branch(self, task_ids) -> None:
        """Run only these of the task's direct downstream tasks; the others are skipped."""
        chosen = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        if not all(isinstance(task_id, str) for task_id in chosen):
            raise TypeError(f"context.branch takes task ids (str), not {task_ids!r}"[:300])
        self.chosen = chosen


def call(job: Job, handler=None) -> tuple:
    """The outcome: ("ok", json_text, branch or None), ("skip", reason) or ("error", line).
    ``handler``: the python handler already loaded (a warm executor's), else the module is
    executed first."""
    context = Context(
        **job.context,
        log=logging.getLogger(f"brisa.task.{job.context.get('task_id', 'function')}"),
        secrets=dict(job.secrets),
        chosen=None,
    )
    try:
        value = _call(job, context, handler)
    except SkipTask as exc:
        print(f"[brisa] the task skipped itself: {exc}" if str(exc) else "[brisa] skipped")
        return ("skip", str(exc))
    except (Failed, TemplateError) as exc:
        message = " ".join(str(exc).splitlines())[:500]
        print(f"[brisa] {message}")
        return ("error", message)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt fail the try too
        traceback.print_exception(type(exc), exc, _from_user_code(exc.__traceback__))
        return ("error", _one_line(exc))
    try:
        result = strict_json.dumps(value, path="result")
    except ValueError as exc:
        message = f"{exc}: a result must be JSON (str, number, bool, None, list, dict)"
        print(f"[brisa] {message}")
        return ("error", message[:500])
    if len(result) > job.result_cap_bytes:
        return ("error", f"result is {len(result)} bytes, over the cap of {job.result_cap_bytes}")
    return ("ok", result, context.chosen)


def _call(job: Job, context: Context, handler):
    """The function's result (None for a check_only job)."""
    if job.runtime != "python":
        return None if job.check_only else runtimes.run(job)
    handler = handler or load_handler(job.source, job.handler, job.filename)
    return None if job.check_only else handler(job.event, context)


def exec_executor(command: list, env: dict, jobs, outcomes, output) -> None:
    """In a child of the fork server: become a warm executor (app/sandbox/executor.py) by
    exec'ing ``command`` (the environment's interpreter) with ``env``, its output on
    ``output``, its job and outcome pipes' descriptors appended to the command."""
    os.setsid()  # its own process group: the worker kills the whole group
    _die_with_parent()  # kept across exec
    _redirect_output(output)
    fds = [jobs.fileno(), outcomes.fileno()]
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        os.execve(command[0], [*command, *map(str, fds)], env)
    except OSError as exc:
        print(f"[brisa] the executor could not start: {exc}", flush=True)
        os._exit(127)


def _from_user_code(tb):
    """The traceback less its first frames in Brisa's sandbox (call, _call, load_handler)."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(SANDBOX_DIR):
        tb = tb.tb_next
    return tb


def _one_line(exc: BaseException) -> str:
    try:
        message = str(exc).strip().splitlines()
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
        message = []
    text = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    return text[:500]
