"""The sandbox: one function call in a forked child, as the worker and the deploy check run it."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.domain.outcomes import STOPPED, Outcome
from app.engine import functions
from app.sandbox import child as sandbox_child
from app.sandbox import supervisor as sandbox
from app.sandbox.job import Job
from tests.conftest import wait_until_gone

PROJECT_ROOT = Path(__file__).resolve().parents[3]
FILENAME = "<function demo v1>"
CONTEXT = {
    "run_id": 7,
    "dag_id": "nightly",
    "task_id": "extract",
    "try_number": 1,
    "max_tries": 2,
    "logical_date": "2026-01-01T00:00:00.000Z",
}


class Recorder(sandbox.Observer):
    """Collects the child's output and counts ticks; tick answers ``keep_going(self)``."""

    def __init__(self, keep_going=lambda recorder: True):
        self.chunks: list[str] = []
        self.ticks = 0
        self.keep_going = keep_going

    def output(self, text: str) -> None:
        self.chunks.append(text)

    def tick(self) -> bool:
        self.ticks += 1
        return self.keep_going(self)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def make_job(source: str, **fields) -> Job:
    """A job shaped like try_runner.build_job's."""
    job = {
        "runtime": "python",
        "source": textwrap.dedent(source),
        "handler": "handler",
        "filename": FILENAME,
        "event": {"conf": None, "args": {}, "upstream": {}},
        "context": dict(CONTEXT),
        "env": {},
        "memory_mb": 512,
        "result_cap_bytes": 1024 * 1024,
    }
    job.update(fields)
    return Job(**job)


def check_job(source: str) -> Job:
    """A job shaped like functions.check_loads's."""
    return Job(
        runtime="python",
        source=textwrap.dedent(source),
        handler="handler",
        filename="<function demo>",
        memory_mb=512,
        result_cap_bytes=1024 * 1024,
        check_only=True,
    )


def run(source: str, timeout: float = 20, observer: Recorder | None = None, **fields):
    observer = observer or Recorder()
    return sandbox.run(make_job(source, **fields), timeout, observer), observer


def test_returns_result_and_streams_prints_and_logs_in_order():
    source = """\
        import sys

        def handler(event, context):
            print("first")
            context.log.info("second")
            print("third: olá ✓", file=sys.stderr)
            return {"echo": event, "task": context.task_id, "try": context.try_number}
        """
    event = {"conf": {"day": "2026-01-01"}, "args": {"n": 3}, "upstream": {"a": [1, 2]}}
    outcome, observer = run(source, event=event)
    assert outcome == Outcome(True, {"echo": event, "task": "extract", "try": 1}, None)
    text = observer.text
    assert "INFO brisa.task.extract: second" in text
    assert text.index("first") < text.index("second") < text.index("third: olá ✓")


def test_exception_fails_with_one_line_error_and_traceback_from_user_code():
    source = """\
        def handler(event, context):
            value = 1
            raise ValueError("boom")
        """
    outcome, observer = run(source)
    assert outcome == Outcome(False, None, "ValueError: boom")
    text = observer.text
    assert f'File "{FILENAME}", line 3, in handler' in text
    assert 'raise ValueError("boom")' in text
    assert text.rstrip().endswith("ValueError: boom")
    assert "in _run" not in text
    assert "sandbox_child" not in text


def test_hang_is_killed_at_the_timeout():
    source = """\
        import os
        import time

        def handler(event, context):
            print(os.getpid(), flush=True)
            time.sleep(3600)
        """
    outcome, observer = run(source, timeout=1)
    assert outcome == Outcome(False, None, "timed out after 1s and was killed")
    assert wait_until_gone(int(observer.text.strip()))
    assert observer.ticks >= 1


def test_os_exit_reports_exit_code_and_keeps_earlier_output():
    source = """\
        import os

        def handler(event, context):
            print("before exit", flush=True)
            os._exit(3)
        """
    outcome, observer = run(source)
    assert not outcome.ok
    assert "exited with code 3" in outcome.error
    assert "before exit" in observer.text


def test_segfault_reports_the_signal():
    source = """\
        import os
        import signal

        def handler(event, context):
            os.kill(os.getpid(), signal.SIGSEGV)
        """
    outcome, _ = run(source)
    assert not outcome.ok
    assert "SIGSEGV" in outcome.error


def test_child_environment_is_only_the_safe_set_plus_the_job_env(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/brisa")
    monkeypatch.setenv("SECRET_KEY", "do-not-leak")
    source = "import os\ndef handler(e, c):\n    return dict(os.environ)\n"
    outcome, _ = run(source, env={"GREETING": "hi", "API_BASE": "https://example.test"})
    assert outcome.ok, outcome.error
    environ = outcome.result
    assert set(environ) == {"PATH", "HOME", "TMPDIR", "LANG", "GREETING", "API_BASE"}
    assert environ["GREETING"] == "hi"
    assert environ["API_BASE"] == "https://example.test"
    assert environ["PATH"] == sandbox_child.SAFE_PATH
    assert environ["LANG"] == "C.UTF-8"


def test_child_cannot_read_the_workers_environment_from_proc():
    # A fresh interpreter, so the fork server starts with the canary in its environment.
    script = textwrap.dedent(
        """\
        import json
        from app.sandbox import supervisor as sandbox
        from app.sandbox.job import Job

        source = "def handler(e, c):\\n    return open('/proc/self/environ').read()\\n"
        job = Job(runtime="python", source=source, handler="handler", filename="<f>",
                  memory_mb=512, result_cap_bytes=1 << 20)
        outcome = sandbox.run(job, 10)
        print(json.dumps({"ok": outcome.ok, "environ": outcome.result}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SECRET_KEY": "brisa-canary-1f2e"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["ok"] is True
    assert "brisa-canary" not in seen["environ"]


def test_working_directory_is_a_fresh_temp_dir_removed_afterwards():
    source = """\
        import os

        def handler(event, context):
            return {"cwd": os.getcwd(), "home": os.environ["HOME"], "files": os.listdir(".")}
        """
    first, _ = run(source)
    second, _ = run(source)
    assert first.ok, first.error
    cwd = first.result["cwd"]
    assert os.path.basename(cwd).startswith("brisa-try-")
    assert first.result["home"] == cwd
    assert first.result["files"] == []
    assert second.result["cwd"] != cwd
    assert not os.path.exists(cwd)
    assert not os.path.exists(second.result["cwd"])


def test_working_directory_of_a_killed_child_is_removed():
    source = """\
        import os
        import time

        def handler(event, context):
            print("cwd=" + os.getcwd(), flush=True)
            time.sleep(30)
        """
    outcome, observer = run(source, timeout=1)
    assert "timed out" in outcome.error
    cwd = re.search(r"cwd=(\S+)", observer.text).group(1)
    try:
        assert not os.path.exists(cwd)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def test_memory_limit_raises_memory_error():
    source = "def handler(e, c):\n    return len(bytearray(2 * 1024 ** 3))\n"
    outcome, _ = run(source, memory_mb=256)
    assert not outcome.ok
    assert "MemoryError" in outcome.error


def test_result_that_is_not_json_fails():
    outcome, _ = run("def handler(e, c):\n    return {1, 2}\n")
    assert not outcome.ok
    assert outcome.error == (
        "result: set is not JSON: a result must be JSON (str, number, bool, None, list, dict)"
    )


@pytest.mark.parametrize(
    ("length", "ok"),
    [(98, True), (99, False)],  # the JSON text is the string plus its two quotes
)
def test_result_over_the_cap_fails(length, ok):
    outcome, _ = run(f"def handler(e, c):\n    return 'x' * {length}\n", result_cap_bytes=100)
    assert outcome.ok is ok
    if ok:
        assert outcome.result == "x" * length
    else:
        assert outcome.error == "result is 101 bytes, over the cap of 100"


def test_grandchild_processes_are_killed():
    source = """\
        import subprocess

        def handler(event, context):
            sleeper = subprocess.Popen(["sleep", "60"])
            return {"pid": sleeper.pid, "running": sleeper.poll() is None}
        """
    outcome, _ = run(source)
    assert outcome.ok, outcome.error
    assert outcome.result["running"]
    assert wait_until_gone(outcome.result["pid"])


def test_tick_returning_false_stops_the_child():
    source = """\
        import os
        import time

        def handler(event, context):
            print(os.getpid(), flush=True)
            time.sleep(30)
        """
    observer = Recorder(keep_going=lambda recorder: not recorder.chunks)  # stop once it printed
    outcome, _ = run(source, timeout=30, observer=observer)
    assert outcome == Outcome(False, None, STOPPED)
    assert wait_until_gone(int(observer.text.strip()))


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("handler = 5\n", "TypeError: 'handler' is not callable"),
        ("def other(e, c):\n    return 1\n", "LookupError: the module defines no 'handler'"),
        (
            "import brisa_no_such_module\ndef handler(e, c):\n    return 1\n",
            "ModuleNotFoundError: No module named 'brisa_no_such_module'",
        ),
        ("def handler(e, c):\n    raise RuntimeError('not called')\n", None),
    ],
    ids=["not-callable", "no-handler", "import-error", "valid"],
)
def test_check_only_loads_the_module_without_calling_the_handler(source, error):
    outcome = sandbox.run(check_job(source), 10)
    if error is None:
        assert outcome == Outcome(True, None, None)
    else:
        assert outcome == Outcome(False, None, error)
    # The deploy check runs the same load in a process of its own (app/sandbox/load_check.py).
    assert functions.load_check_error(check_job(source).to_json(), timeout_s=10) == error


def test_output_flood_is_delivered_completely():
    source = (
        "def handler(e, c):\n    for i in range(100_000):\n        print(i)\n    return 'done'\n"
    )
    outcome, observer = run(source, timeout=60)
    assert outcome == Outcome(True, "done", None)
    assert observer.text.splitlines() == [str(i) for i in range(100_000)]


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("sys.exit(2)", "SystemExit: 2"),
        ("sys.exit()", "SystemExit"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ],
)
def test_system_exit_and_keyboard_interrupt_fail_the_try(statement, error):
    outcome, _ = run(f"import sys\ndef handler(e, c):\n    {statement}\n")
    assert outcome == Outcome(False, None, error)


def test_an_exception_whose_str_raises_still_fails_with_its_name():
    source = """\
        class Weird(Exception):
            def __str__(self):
                return 1 / 0

        def handler(event, context):
            raise Weird()
        """
    outcome, _ = run(source)
    assert outcome == Outcome(False, None, "Weird")


def test_configure_sets_the_knobs_and_refuses_nonsense(monkeypatch):
    monkeypatch.setattr(sandbox, "_tuning", sandbox.Tuning())
    sandbox.configure(tick_s=0.1, spares=0)
    assert sandbox._tuning == sandbox.Tuning(tick_s=0.1, spares=0)
    for tick_s, spares in ((0, 1), (0.25, -1)):
        with pytest.raises(ValueError):
            sandbox.configure(tick_s=tick_s, spares=spares)
    assert sandbox._tuning == sandbox.Tuning(tick_s=0.1, spares=0)
