"""Warm executors (app/sandbox/executors.py, app/sandbox/executor.py): a process started in a
version's environment serves successive tries; what a try leaves behind recycles it."""

import time
from pathlib import Path

import pytest

from app.engine import environments
from app.sandbox import executors
from app.sandbox.job import Job
from app.sandbox.supervisor import Observer


class Recorder(Observer):
    def __init__(self):
        self.text = ""

    def output(self, text: str) -> None:
        self.text += text


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> str:
    """The interpreter of an environment with no packages (only the standard library)."""
    env_dir = Path(tmp_path_factory.mktemp("envs"))
    return str(environments.ensure_built("", env_dir=env_dir, cache_mb=500).python)


@pytest.fixture
def pool():
    instance = executors.Pool(executors.Limits(max_tries=3))
    yield instance
    instance.stop_all()


def job(source: str, **fields) -> Job:
    return Job(
        runtime="python",
        source=source,
        handler="handler",
        filename="<function demo v1>",
        memory_mb=512,
        result_cap_bytes=1 << 20,
        **fields,
    )


COUNTER = (
    "import os\nCOUNT = [0]\nprint('init')\n"
    "def handler(event, context):\n"
    "    COUNT[0] += 1\n"
    "    print('try', COUNT[0])\n"
    "    return {'n': COUNT[0], 'event': event, 'cwd': os.getcwd()}\n"
)


def test_module_state_survives_warm_tries_and_each_log_is_its_own(pool, python):
    seen = []
    for i in range(3):
        recorder = Recorder()
        tried = job(COUNTER, event={"i": i})
        outcome, cold = pool.run(executors.Spawn.of(tried, python), tried, 10, recorder)
        seen.append((outcome.result["n"], outcome.result["event"], cold, recorder.text))
    assert seen == [
        (1, {"i": 0}, True, "init\ntry 1\n"),
        (2, {"i": 1}, False, "try 2\n"),
        (3, {"i": 2}, False, "try 3\n"),
    ]


def test_an_executor_is_recycled_after_max_tries(pool, python):
    spawn = executors.Spawn.of(job(COUNTER), python)
    counts = [pool.run(spawn, job(COUNTER), 10, Recorder())[0].result["n"] for _ in range(4)]
    assert counts == [1, 2, 3, 1]


def test_a_thread_left_running_recycles_the_executor(pool, python):
    source = (
        "import threading, time\nSTARTS = [0]\nSTARTS[0] += 1\n"
        "def handler(event, context):\n"
        "    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "    return STARTS[0]\n"
    )
    spawn = executors.Spawn.of(job(source), python)
    first, cold_first = pool.run(spawn, job(source), 10, Recorder())
    second, cold_second = pool.run(spawn, job(source), 10, Recorder())
    assert (first.result, cold_first, second.result, cold_second) == (1, True, 1, True)


def test_cwd_sys_path_and_signal_handlers_are_restored_for_the_next_try(pool, python):
    source = (
        "import os, signal, sys\n"
        "def handler(event, context):\n"
        "    before = (os.getcwd() == os.environ['HOME'], '/nowhere' in sys.path,"
        " signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)\n"
        "    os.chdir('/'); sys.path.append('/nowhere')\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    return before\n"
    )
    spawn = executors.Spawn.of(job(source), python)
    results = [pool.run(spawn, job(source), 10, Recorder())[0].result for _ in range(2)]
    assert results == [[True, False, True], [True, False, True]]


def test_a_timeout_kills_the_executor_and_the_next_try_starts_a_new_one(pool, python):
    source = "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n    return 1\n"
    spawn = executors.Spawn.of(job(source), python)
    slow, _ = pool.run(spawn, job(source, event={"s": 30}), 0.5, Recorder())
    fast, cold = pool.run(spawn, job(source, event={"s": 0}), 10, Recorder())
    assert (slow.error, fast.result, cold) == ("timed out after 0.5s and was killed", 1, True)


def test_os_exit_fails_the_try_and_brisas_packages_are_not_importable(pool, python):
    exits = job("import os\ndef handler(event, context):\n    os._exit(3)\n")
    outcome, _ = pool.run(executors.Spawn.of(exits, python), exits, 10, Recorder())
    assert outcome.error == "the function's process exited with code 3 before returning"
    imports = job("import peewee\ndef handler(event, context):\n    return 1\n")
    outcome, _ = pool.run(executors.Spawn.of(imports, python), imports, 10, Recorder())
    assert outcome.error == "ModuleNotFoundError: No module named 'peewee'"


def test_fresh_isolation_starts_a_process_per_try(pool, python):
    spawn = executors.Spawn.of(job(COUNTER), python)
    runs = [pool.run(spawn, job(COUNTER), 10, Recorder(), fresh=True) for _ in range(2)]
    assert [(o.result["n"], cold) for o, cold in runs] == [(1, True), (1, True)]


def test_an_executor_serves_only_the_module_it_loaded(pool, python):
    """Versions are keyed by what they hold, not by id: a worker outlives databases (and tests
    make one each), so version 1 of one database must not reuse version 1 of another's."""
    first = job("def handler(event, context):\n    return 'first'\n")
    second = job("def handler(event, context):\n    return 'second'\n")
    results = [pool.run(executors.Spawn.of(j, python), j, 10, Recorder()) for j in (first, second)]
    assert [(o.result, cold) for o, cold in results] == [("first", True), ("second", True)]
    again, cold = pool.run(executors.Spawn.of(first, python), first, 10, Recorder())
    assert (again.result, cold) == ("first", False)


def test_an_idle_executor_is_stopped_without_waiting_for_the_next_try(python):
    pool = executors.Pool(executors.Limits(idle_s=0.2))
    try:
        tried = job(COUNTER)
        pool.run(executors.Spawn.of(tried, python), tried, 10, Recorder())
        (executor,) = pool._idle.values()
        pid, deadline = executor.process.pid, time.monotonic() + 30  # bounds a hang, not a speed
        while (pool._idle or alive(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pool._idle and not alive(pid)
    finally:
        pool.stop_all()


EXITS_WITH_A_WARM_EXECUTOR = """
import sys
from app.sandbox import executors
from app.sandbox.job import Job
from app.sandbox.supervisor import Observer
from app.worker import try_runner

spawn_job = Job(runtime="python", source=sys.argv[2], handler="handler", filename="<f v1>",
                memory_mb=512, result_cap_bytes=1 << 20)
outcome, cold = try_runner.executor_pool().run(
    executors.Spawn.of(spawn_job, sys.argv[1]), spawn_job, 30, Observer(), key="k")
print(outcome.ok, cold, flush=True)
"""


def test_a_worker_with_warm_executors_exits_without_waiting_for_them(python):
    """multiprocessing joins a process's live children at exit; a warm executor waits for its
    next job forever, so the worker's pool must stop them first (a SIGTERMed worker hung)."""
    import subprocess
    import sys

    source = "def handler(event, context):\n    return 1\n"
    script = [sys.executable, "-c", EXITS_WITH_A_WARM_EXECUTOR, python, source]
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(script, cwd=root, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()) == (0, ["True", "True"]), done.stderr
