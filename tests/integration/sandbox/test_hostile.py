"""Hostile functions through the real worker: each fails (or is contained) as described,
and the worker goes on serving the next task."""

import os
import time

import pytest

from app import config
from tests.conftest import deploy_source

HOSTILE = {
    "infinite_loop": ("def handler(e, c):\n    while True:\n        pass\n", "timed out after 2s"),
    "huge_allocation": (
        "def handler(e, c):\n    return len(bytearray(10 * 1024 ** 3))\n",
        "MemoryError",
    ),
    "fork_bomb": (
        "import os, time\n"
        "def handler(e, c):\n"
        "    pids = []\n"
        "    for _ in range(30):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "        pids.append(pid)\n"
        "    print('children', ' '.join(map(str, pids)), flush=True)\n"
        "    time.sleep(600)\n",
        "timed out after 2s",
    ),
    "huge_result": ("def handler(e, c):\n    return 'x' * (3 * 1024 * 1024)\n", "over the cap"),
    "kills_its_parent": (
        "import os, signal\ndef handler(e, c):\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        "    import time; time.sleep(5)\n",
        "the function's process",  # dies with the fork server (PDEATHSIG); its status is lost
    ),
    "returns_nan": (
        "def handler(e, c):\n    return {'ratio': float('nan'), 'big': float('inf')}\n",
        'result["ratio"]: float nan is not JSON: a result must be JSON',
    ),
    "returns_a_datetime": (
        "import datetime\ndef handler(e, c):\n    return [{'when': datetime.datetime.now()}]\n",
        'result[0]["when"]: datetime is not JSON',
    ),
    "branches_to_objects": (
        "def handler(e, c):\n    c.branch([{'a': 1}])\n",
        "TypeError: context.branch takes task ids (str), not [{'a': 1}]",
    ),
    "exits_without_result": (
        "import os\ndef handler(e, c):\n    os._exit(0)\n",
        "exited with code 0 before returning",
    ),
}


def invoke(client, admin, name):
    response = client.post(f"/api/v1/functions/{name}/invoke?wait=30", headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_function_fails_and_the_worker_serves_the_next(client, admin, consumer, name):
    source, error = HOSTILE[name]
    deploy_source(client, admin, name, source, timeout=2, memory_mb=256)
    deploy_source(client, admin, "fine", "def handler(e, c):\n    return 'still serving'\n")
    outcome = invoke(client, admin, name)
    assert outcome["state"] == "failed"
    assert error in outcome["error"], outcome["error"]
    assert invoke(client, admin, "fine")["result"] == "still serving"
    if name == "fork_bomb":
        log = client.get(f"/api/v1/runs/{outcome['run_id']}/tasks/{name}/logs", headers=admin)
        pids = [int(p) for p in log.get_json()["text"].split("children ")[1].split()[:30]]
        deadline = time.monotonic() + 5
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids), "the fork bomb's children outlived the try"


def test_printing_100_mib_is_capped_and_the_try_succeeds(client, admin, consumer):
    source = (
        "import sys\n"
        "def handler(e, c):\n"
        "    line = 'y' * 1023 + '\\n'\n"
        "    for _ in range(100 * 1024):\n"
        "        sys.stdout.write(line)\n"
        "    return 'printed'\n"
    )
    deploy_source(client, admin, "chatterbox", source, timeout=60)
    outcome = invoke(client, admin, "chatterbox")
    assert (outcome["state"], outcome["result"]) == ("success", "printed")
    log = client.get(f"/api/v1/runs/{outcome['run_id']}/tasks/chatterbox/logs", headers=admin)
    text = log.get_json()["text"]
    assert len(text) < 1.1 * 1024 * 1024
    assert "[brisa] log truncated at 1048576 bytes" in text


def test_the_function_cannot_see_brisas_settings(client, admin, consumer, monkeypatch):
    source = (
        "import os\n"
        "def handler(e, c):\n"
        "    environ = open('/proc/self/environ', 'rb').read().decode(errors='replace')\n"
        "    return {'env': sorted(os.environ), 'proc': 'DATABASE_URL' in environ or "
        "'SECRET_KEY' in environ or 'BRISA_' in environ}\n"
    )
    deploy_source(client, admin, "snoop", source)
    outcome = invoke(client, admin, "snoop")
    assert outcome["result"] == {"env": ["HOME", "LANG", "PATH", "TMPDIR"], "proc": False}
    assert os.environ.get("SECRET_KEY")  # the worker itself has it


LITTER = """\
import os, signal, sys, threading, time


def chatter():
    while True:
        print("thread chatter", flush=True)
        time.sleep(0.01)


def handler(event, context):
    mode = event["conf"]["mode"]
    if mode == "litter":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        os.chdir("/")
        sys.path.insert(0, "/tmp")
        threading.Thread(target=chatter, daemon=True).start()
        time.sleep(0.05)
        return "littered"
    if mode == "spin":
        while True:
            pass
    if mode == "allocate":
        return len(bytearray(10 * 1024**3))
    return {
        "cwd": os.getcwd() == os.environ["HOME"],
        "path": sys.path[0] != "/tmp",
        "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
    }
"""


def test_what_a_try_leaves_behind_does_not_reach_the_next_try(client, admin, consumer):
    """A thread left printing, a changed working directory, sys.path and signal handlers: the
    next try of the same version still has its own log, a clean start, its timeout and its
    memory limit (the warm executor is recycled or restored)."""
    deploy_source(client, admin, "litter", LITTER, timeout=2, memory_mb=256)

    def run(mode):
        url = "/api/v1/functions/litter/invoke?wait=30"
        outcome = client.post(url, json={"mode": mode}, headers=admin).get_json()
        logs = f"/api/v1/runs/{outcome['run_id']}/tasks/litter/logs"
        return outcome, client.get(logs, headers=admin).get_json()["text"]

    assert run("litter")[0]["result"] == "littered"
    checked, log = run("check")
    assert checked["result"] == {"cwd": True, "path": True, "sigterm": True}
    assert "thread chatter" not in log
    run("litter")
    spun, log = run("spin")
    assert "timed out after 2s" in spun["error"] and "thread chatter" not in log
    run("litter")
    assert "MemoryError" in run("allocate")[0]["error"]


def test_a_nul_byte_from_outside_is_stored_as_the_replacement_character(client, admin, consumer):
    """The issue's example: a function logs "ui\u0000nul" (a webhook's body can carry it;
    the API and the UI refuse NUL with a 422). Postgres text refuses NUL; every backend
    stores U+FFFD in its place, unpaired surrogates too, and the try's outcome is kept (#15.4).
    The result is JSON, where NUL is the escape \u0000: it comes back exactly."""
    source = (
        "def handler(event, c):\n"
        "    name = 'ui' + chr(0) + 'nul'\n"
        "    print('hello', name, chr(0xDC80), flush=True)\n"
        "    return name\n"
    )
    deploy_source(client, admin, "echo_nul", source)
    outcome = invoke(client, admin, "echo_nul")
    assert (outcome["state"], outcome["result"]) == ("success", "ui\u0000nul"), outcome
    log = client.get(f"/api/v1/runs/{outcome['run_id']}/tasks/echo_nul/logs", headers=admin)
    assert "hello ui\ufffdnul \ufffd" in log.get_json()["text"]
    raiser = "def handler(e, c):\n    raise ValueError('bad' + chr(0) + 'byte')\n"
    deploy_source(client, admin, "raise_nul", raiser)
    failed = invoke(client, admin, "raise_nul")
    assert failed["state"] == "failed" and "bad\ufffdbyte" in failed["error"], failed


ESCAPES = {  # a child that leaves the try's process group, then the try ends
    "setpgid_then_timeout": (
        "import os, time\n"
        "def handler(e, c):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.setpgid(0, 0)\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    print('escaped', pid, flush=True)\n"
        "    time.sleep(600)\n",
        "failed",
    ),
    "setpgid_then_return": (
        "import os, time\n"
        "def handler(e, c):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os.setpgid(0, 0)\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    print('escaped', pid, flush=True)\n"
        "    return 'left a child'\n",
        "success",
    ),
    "double_fork_daemon": (
        "import os, time\n"
        "def handler(e, c):\n"
        "    r, w = os.pipe()\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "        os.write(w, str(pid).encode())\n"
        "        os._exit(0)\n"
        "    print('escaped', int(os.read(r, 32)), flush=True)\n"
        "    return 'daemonized'\n",
        "success",
    ),
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_every_process_a_try_starts_dies_with_the_try(client, admin, consumer, name):
    """#16.7: a child that called os.setpgid(0, 0) (or daemonized) outlived the timeout and
    the try. Every descendant is found (the executor is a subreaper) and killed."""
    source, state = ESCAPES[name]
    deploy_source(client, admin, name, source, timeout=2)
    outcome = invoke(client, admin, name)
    assert outcome["state"] == state, outcome
    log = client.get(f"/api/v1/runs/{outcome['run_id']}/tasks/{name}/logs", headers=admin)
    escaped = int(log.get_json()["text"].split("escaped ")[1].split()[0])
    deadline = time.monotonic() + 10
    while alive(escaped) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(escaped), f"process {escaped} outlived its try"


def test_a_try_writing_a_file_past_its_limit_fails_with_file_too_large(
    client, admin, consumer, monkeypatch
):
    monkeypatch.setenv("BRISA_TRY_MAX_FILE_BYTES", str(1024 * 1024))
    config.current.cache_clear()
    source = (
        "def handler(e, c):\n"
        "    with open('big', 'wb') as f:\n"
        "        f.write(b'x' * (2 * 1024 * 1024))\n"
    )
    deploy_source(client, admin, "writer", source)
    outcome = invoke(client, admin, "writer")
    assert outcome["state"] == "failed"
    assert "File too large" in outcome["error"], outcome["error"]


def test_a_try_runs_under_the_documented_process_and_file_limits(client, admin, consumer):
    source = (
        "def handler(e, c):\n"
        "    limits = open('/proc/self/limits').read().splitlines()\n"
        "    pick = lambda name: [l for l in limits if l.startswith(name)][0].split()\n"
        "    return {'processes': pick('Max processes')[2],\n"
        "            'file': pick('Max file size')[3]}\n"
    )
    deploy_source(client, admin, "limits", source)
    outcome = invoke(client, admin, "limits")
    assert outcome["result"] == {"processes": "4096", "file": str(1024 * 1024 * 1024)}
