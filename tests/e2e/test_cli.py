"""The CLI against a live Brisa: the Procfile's processes as subprocesses, and ``python -m
app`` run as a user runs it, with BRISA_URL and BRISA_TOKEN."""

import json
import os
import subprocess
import sys
import threading

import pytest
import requests

from tests.conftest import FUNCTIONS_DIR, edited_examples
from tests.system import ADMIN_TOKEN, AUTH, ROOT, free_port, procfile_system

pytestmark = pytest.mark.e2e

LOG_STREAM = """\
import pathlib
import time


def handler(event, context):
    print("first line", flush=True)
    marker = pathlib.Path(event["conf"]["marker"])
    while not marker.exists():
        time.sleep(0.05)
    print("second line", flush=True)
    return "done"
"""

CALL_STYLE_DAG = """\
from app.cli.authoring import dag, task


@task
def numbers(event, context):
    return event["conf"]["numbers"]


@task(retries=1)
def total(event, context):
    return sum(event["upstream"]["numbers"]) * event["args"]["factor"]


@task(trigger_rule="all_done")
def announce(event, context):
    print("the total is", event["upstream"]["total"])
    return {"total": event["upstream"]["total"]}


@dag(schedule=None, description="call-style wiring")
def sums():
    announce(total(numbers(), factor=10))
"""


def cli(base: str, *args, token: str = ADMIN_TOKEN, check: bool = True):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(BRISA_URL=base, BRISA_TOKEN=token, PYTHONPATH=str(ROOT), NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def api(base: str, method: str, path: str, **kwargs):
    response = requests.request(method, f"{base}/api/v1{path}", headers=AUTH, timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    with procfile_system("postgres", tmp_path_factory.mktemp("var")) as system:
        yield system.base


@pytest.fixture(scope="module")
def deployed(base):
    cli(base, "deploy", str(FUNCTIONS_DIR))
    return base


def versions(base: str) -> dict:
    functions = {f["name"]: f["version"] for f in api(base, "GET", "/functions")["functions"]}
    dags = {d["dag_id"]: d["version"] for d in api(base, "GET", "/dags")["dags"]}
    return {**functions, **dags}


def test_deploying_a_folder_twice_changes_nothing_the_second_time(deployed):
    base = deployed
    before = versions(base)
    assert {"hello", "example_taskflow.fetch", "example_pipeline", "example_taskflow"} <= set(
        before
    )
    again = cli(base, "deploy", str(FUNCTIONS_DIR)).stdout
    assert "0 to deploy" in again and "deployed" not in again
    assert "= example_taskflow.report" in again
    assert versions(base) == before


def test_a_dry_run_shows_the_change_and_deploys_nothing(deployed, tmp_path):
    base = deployed
    folder = edited_examples(tmp_path / "functions")
    before = versions(base)

    plan = cli(base, "deploy", str(folder), "--dry-run").stdout
    assert "~ hello" in plan and "changed (source)" in plan
    assert "changed (schedule)" in plan
    assert "= scale" in plan and "2 to deploy" in plan
    assert versions(base) == before

    data = json.loads(cli(base, "deploy", str(folder), "--dry-run", "--json").stdout)
    changed = {step["name"] for step in data["plan"] if step["status"] == "changed"}
    assert changed == {"hello", "example_pipeline"} and data["dry_run"] is True


def test_the_example_python_dag_deploys_and_runs(deployed):
    done = cli(
        deployed, "dags", "trigger", "example_taskflow", "--conf", '{"text": "a bb cccc"}', "--wait"
    )
    assert "success" in done.stdout.splitlines()[0]
    run_id = int(done.stdout.split()[1])
    run = api(deployed, "GET", f"/runs/{run_id}")
    results = {t["task_id"]: t["result"] for t in run["tasks"]}
    assert results["report"] == {"count": 3, "long_words": ["cccc"]}
    assert {t["function"] for t in run["tasks"]} == {
        "example_taskflow.fetch",
        "example_taskflow.long_words",
        "example_taskflow.count",
        "example_taskflow.report",
    }
    assert "run " in done.stderr and "4 success" in done.stderr  # the progress lines


def test_a_call_style_python_dag_deploys_and_runs(base, tmp_path):
    path = tmp_path / "sums.py"
    path.write_text(CALL_STYLE_DAG)
    out = cli(base, "deploy", str(path)).stdout
    assert "+ sums.numbers" in out and "deployed dag sums v1" in out
    done = cli(base, "trigger", "sums", "--conf", '{"numbers": [1, 2, 3]}', "--wait", "--json")
    run = json.loads(done.stdout)
    assert run["state"] == "success"
    results = {t["task_id"]: t["result"] for t in run["tasks"]}
    assert results == {"numbers": [1, 2, 3], "total": 60, "announce": {"total": 60}}
    assert "the total is 60" in cli(base, "runs", "logs", str(run["run_id"]), "announce").stdout


def test_runs_logs_follow_prints_a_running_tasks_lines_as_they_come(base, tmp_path):
    api(base, "POST", "/functions", json={"name": "streamer", "source": LOG_STREAM})
    api(
        base,
        "PUT",
        "/dags/streaming",
        json={"tasks": [{"task_id": "talk", "function": "streamer"}]},
    )
    marker = tmp_path / "go-on"
    run = api(base, "POST", "/dags/streaming/runs", json={"conf": {"marker": str(marker)}})
    env = {**os.environ, "BRISA_URL": base, "BRISA_TOKEN": ADMIN_TOKEN, "PYTHONPATH": str(ROOT)}
    follow = subprocess.Popen(
        [sys.executable, "-m", "app", "runs", "logs", str(run["run_id"]), "talk", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(90, follow.kill)  # a hang fails the test rather than the suite
    timer.start()
    try:
        first = follow.stdout.readline()
        assert first == "first line\n"
        task = api(base, "GET", f"/runs/{run['run_id']}/tasks/talk")
        assert task["state"] == "running"  # the line came while the task was still running
        marker.touch()
        rest = follow.stdout.read()
        assert follow.wait() == 0
    finally:
        timer.cancel()
    assert "second line" in rest


def test_a_failed_run_exits_non_zero_and_says_why(deployed):
    done = cli(deployed, "dags", "trigger", "example_failure", "--wait", check=False)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "failed" in lines[0]
    boom = next(line for line in lines if line.startswith("boom"))
    assert "failed" in boom and "RuntimeError: this task fails on purpose" in boom
    run_id = lines[0].split()[1]
    logs = cli(deployed, "runs", "logs", run_id, "boom", "--follow", check=False)
    assert logs.returncode == 1 and "this task fails on purpose" in logs.stdout


def test_functions_list_and_invoke(deployed):
    listing = cli(deployed, "functions", "list").stdout.splitlines()
    assert listing[0].split() == ["FUNCTION", "VERSION", "RUNTIME", "HANDLER", "DEPLOYED"]
    hello = next(line for line in listing if line.startswith("hello "))
    assert hello.split()[:4] == ["hello", "1", "python", "handler"]
    assert hello[listing[0].index("VERSION")] == "1"  # aligned under its header
    result = cli(deployed, "functions", "invoke", "hello", "--conf", '{"name": "cli"}').stdout
    assert json.loads(result) == {"greeting": "hello, cli", "length": 3}
    zoe = cli(deployed, "functions", "invoke", "hello", "--conf", '{"name": "Zoë"}').stdout
    assert zoe == '{"greeting": "hello, Zoë", "length": 3}\n'  # text, not \\u escapes
    failed = cli(deployed, "functions", "invoke", "fail_on_purpose", check=False)
    assert failed.returncode == 1 and "this task fails on purpose" in failed.stderr


def test_dag_and_run_operations(base):
    api(base, "POST", "/functions", json={"name": "bad", "source": BAD})
    api(base, "POST", "/functions", json={"name": "ok", "source": OK})
    spec = {
        "schedule": "0 * * * *",
        "start_date": "2026-01-01T00:00:00Z",
        "tasks": [
            {"task_id": "a", "function": "bad"},
            {"task_id": "b", "function": "ok", "upstream": ["a"]},
        ],
    }
    api(base, "PUT", "/dags/ops", json=spec)
    assert cli(base, "dags", "pause", "ops").stdout == "ops: paused\n"
    listing = cli(base, "dags", "list").stdout
    assert any(line.split()[:2] == ["ops", "yes"] for line in listing.splitlines())
    assert cli(base, "unpause", "ops").stdout == "ops: unpaused\n"  # the old spelling

    out = cli(
        base,
        "dags",
        "backfill",
        "ops",
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "2026-01-01T01:00:00Z",
    ).stdout
    assert out.startswith("created 2 run(s) ")
    first, second = out.split()[-2:]
    for run_id in (first, second):
        assert cli(base, "runs", "show", run_id, "--wait", check=False).returncode == 1
    runs = cli(base, "runs", "list", "ops", "--state", "failed").stdout.splitlines()
    assert runs[0].split()[:2] == ["RUN", "STATE"] and len(runs) >= 3

    assert (
        cli(base, "runs", "mark", first, "a", "success").stdout
        == f"run {first}: a marked success\n"
    )
    assert cli(base, "runs", "clear", first, "b").stdout == f"run {first}: cleared b\n"
    shown = cli(base, "runs", "show", first, "--wait").stdout.splitlines()
    assert shown[0].split()[:2] == ["run", first] and shown[0].endswith("success")
    assert [line.split()[:2] for line in shown[3:]] == [["a", "success"], ["b", "success"]]

    assert cli(base, "rerun", second).stdout == f"run {second}: cleared a, b\n"
    assert cli(base, "runs", "show", second, "--wait", check=False).returncode == 1
    cancelled = cli(base, "runs", "cancel", second, check=False)
    assert cancelled.returncode == 1 and "only a queued or running run" in cancelled.stderr


BAD = "def handler(event, context):\n    raise ValueError('no')\n"
OK = "def handler(event, context):\n    return 1\n"


def test_runs_show_and_wait_print_each_tasks_result_and_text_as_text(deployed):
    conf = '{"name": "Zoë 🌬"}'
    done = cli(deployed, "dags", "trigger", "example_pipeline", "--conf", conf, "--wait").stdout
    run_id = done.split()[1]
    shown = cli(deployed, "runs", "show", run_id).stdout
    for output in (done, shown):
        lines = output.splitlines()
        assert lines[1].endswith(f"conf {conf}")
        assert lines[2].split() == "TASK STATE TRY FUNCTION DURATION RESULT ERROR".split()
        hello = next(line for line in lines if line.startswith("hello "))
        assert '{"greeting": "hello, Zoë 🌬", "length": 5}' in hello
        summarise = next(line for line in lines if line.startswith("summarise "))
        assert '{"total": 25, "parts": {"double": 10, "triple": 15}}' in summarise
    as_json = cli(deployed, "runs", "show", run_id, "--json").stdout
    assert '"name": "Zoë 🌬"' in as_json and json.loads(as_json)["conf"] == {"name": "Zoë 🌬"}


def test_errors_say_what_to_fix(deployed):
    viewer = api(deployed, "POST", "/tokens", json={"role": "viewer"})["token"]
    finished = cli(deployed, "dags", "trigger", "example_pipeline", "--wait").stdout.split()[1]
    for args, token, says in [
        (["dags", "pause", "example_pipeline"], viewer, "the token's role is too low"),  # 403
        (["dags", "list"], "brisa_wrong", "the token was refused"),  # 401
        (["dags", "list"], "", "no token: set BRISA_TOKEN"),  # 401
        (["runs", "show", "999999"], ADMIN_TOKEN, "no run 999999"),  # 404
        (["dags", "trigger", "nope"], ADMIN_TOKEN, "no DAG 'nope'"),  # 404
        (["runs", "cancel", finished], ADMIN_TOKEN, "only a queued or running run"),  # 409
        (
            ["dags", "trigger", "example_pipeline", "--logical-date", "soon"],
            ADMIN_TOKEN,
            "logical_date: must be",
        ),
        (["functions", "invoke", "nope"], ADMIN_TOKEN, "nope"),
    ]:
        done = cli(deployed, *args, token=token, check=False)
        assert done.returncode == 1, args
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
        assert says in done.stderr, done.stderr
    down = cli(f"http://127.0.0.1:{free_port()}", "dags", "list", check=False)
    assert down.returncode == 1 and "cannot reach Brisa at http://127.0.0.1:" in down.stderr
    html = cli(f"{deployed}/ui", "dags", "list", check=False)  # the UI's address, not the root
    assert html.returncode == 1 and "has no such API path (HTTP 404)" in html.stderr
    pasted = cli(f"{deployed}/api/v1", "dags", "list")  # the API's own prefix: taken off
    assert pasted.stdout.startswith("DAG ")


def test_an_invalid_spec_is_refused_before_anything_is_deployed(deployed, tmp_path):
    (tmp_path / "fresh.py").write_text(OK)
    spec = {"dag_id": "broken", "tasks": [{"task_id": "a", "function": "nope", "upstream": ["z"]}]}
    (tmp_path / "broken.json").write_text(json.dumps(spec))
    done = cli(deployed, "deploy", str(tmp_path), check=False)
    assert done.returncode == 1
    assert "unknown function 'nope'" in done.stderr and "unknown upstream task 'z'" in done.stderr
    assert "fresh" not in versions(deployed)


def test_the_embedded_default_deploys_locally_and_runs_the_python_dag(tmp_path):
    """deploy --local writes the running system's database directly; the same files over
    HTTP then change nothing: both ways see the same plan."""
    with procfile_system("embedded", tmp_path / "var") as system:
        local = subprocess.run(
            [sys.executable, "-m", "app", "deploy", "--local", str(FUNCTIONS_DIR)],
            env={**system.env, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert local.returncode == 0, local.stderr
        assert "deployed dag example_taskflow v1" in local.stdout
        over_http = cli(system.base, "deploy", str(FUNCTIONS_DIR)).stdout
        assert "0 to deploy" in over_http and "deployed" not in over_http
        done = cli(system.base, "trigger", "example_taskflow", "--wait", "--json")
        assert json.loads(done.stdout)["state"] == "success"


SIX_BY_API = """\
# /// script
# dependencies = ["six"]
# ///
import six


def handler(event, context):
    return {"via": "api", "six": six.__version__, "py3": six.PY3}
"""

SIX_BY_CLI = """\
import six


def handler(event, context):
    return {"via": "cli", "text": six.ensure_text(b"bytes")}
"""

SIX_DAG = """\
from app.cli.authoring import dag, task


@task(requirements=["six"])
def text(event, context):
    import six

    return six.ensure_text(event["conf"]["word"].encode())


@task
def shout(event, context):
    return event["upstream"]["text"].upper()


@dag(schedule=None, description="a task with a package")
def with_six():
    shout(text())
"""


def test_a_real_package_by_curl_by_the_cli_and_from_a_python_dag(base, tmp_path, real_index):
    """A third-party package from the configured index (skipped locally without one, required
    in CI): locked at deploy, built once, run by the Procfile's worker in a warm executor."""
    by_api = api(base, "POST", "/functions", json={"name": "six_api", "source": SIX_BY_API})
    assert [p.split("==")[0] for p in by_api["packages"]] == ["six"]
    run = api(base, "POST", "/functions/six_api/invoke?wait=60", json={})
    assert (run["state"], run["result"]["py3"]) == ("success", True)

    (tmp_path / "six_cli.py").write_text(SIX_BY_CLI)
    (tmp_path / "six_cli.requirements.txt").write_text(
        "# the CLI reads this beside six_cli.py\nsix\n"
    )
    cli(base, "deploy", str(tmp_path / "six_cli.py"))
    result = cli(base, "functions", "invoke", "six_cli").stdout
    assert json.loads(result) == {"via": "cli", "text": "bytes"}
    shown = cli(base, "functions", "show", "six_cli", "--build-log").stdout
    assert "packages six==" in shown and "at deploy" in shown

    (tmp_path / "with_six.py").write_text(SIX_DAG)
    cli(base, "deploy", str(tmp_path / "with_six.py"))
    done = cli(base, "trigger", "with_six", "--conf", '{"word": "breeze"}', "--wait", "--json")
    dag_run = json.loads(done.stdout)
    assert {t["task_id"]: t["result"] for t in dag_run["tasks"]} == {
        "text": "breeze",
        "shout": "BREEZE",
    }
