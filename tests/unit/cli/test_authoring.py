"""Python-authored DAGs (app/cli/authoring.py): the specs and function payloads they turn into."""

import textwrap
from pathlib import Path

import pytest

from app.cli import authoring
from app.cli.authoring import DAG, AuthoringError, dag, task
from app.domain import dagspec
from app.sandbox import child as sandbox_child

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "functions" / "dags" / "example_taskflow.py"


@task
def extract(event, context):
    return {"rows": [1, 2, 3]}


@task(retries=2, retry_delay=5, timeout=30, pool="warehouse")
def transform(event, context):
    return len(event["upstream"]["extract"]["rows"])


@task(trigger_rule="all_done", args={"channel": "ops"}, memory_mb=256, secrets=["slack"])
def notify(event, context):
    return event["args"]


def upstream_of(spec: dict) -> dict:
    return {t["task_id"]: t.get("upstream", []) for t in spec["tasks"]}


def test_shift_operators_chain_tasks_and_lists():
    with DAG("shifts") as definition:
        extract >> [transform, notify.override(task_id="side")] >> notify
    assert upstream_of(definition.to_spec()) == {
        "extract": [],
        "transform": ["extract"],
        "side": ["extract"],
        "notify": ["transform", "side"],
    }


def test_left_shift_reads_the_other_way():
    with DAG("lefts") as definition:
        notify << transform << extract
        [transform] << extract  # a repeated edge is kept once
    assert upstream_of(definition.to_spec()) == {
        "notify": ["transform"],
        "transform": ["extract"],
        "extract": [],
    }


def test_call_style_wires_upstream_and_keyword_args():
    @dag(schedule="@daily", start_date="2026-01-01T00:00:00Z", tags=("etl",))
    def calls():
        rows = extract()
        notify(transform(rows), rows, channel="data")

    spec = calls.to_spec()
    assert spec["dag_id"] == "calls"
    assert spec["schedule"] == "@daily" and spec["tags"] == ["etl"]
    assert upstream_of(spec) == {
        "extract": [],
        "transform": ["extract"],
        "notify": ["transform", "extract"],
    }
    assert spec["tasks"][2]["args"] == {"channel": "data"}  # the call's keywords win


def test_task_options_pass_through_to_the_spec_and_the_function():
    with DAG("options", default_args={"retries": 1}) as definition:
        transform >> notify
    spec = definition.to_spec()
    assert spec["default_args"] == {"retries": 1}
    assert spec["tasks"] == [
        {
            "task_id": "transform",
            "function": "options.transform",
            "retries": 2,
            "retry_delay": 5,
            "timeout": 30,
            "pool": "warehouse",
        },
        {
            "task_id": "notify",
            "function": "options.notify",
            "trigger_rule": "all_done",
            "args": {"channel": "ops"},
            "upstream": ["transform"],
        },
    ]
    payloads = definition.functions("SOURCE")
    assert payloads["options.notify"] == {
        "name": "options.notify",
        "source": "SOURCE",
        "handler": "notify",
        "memory_mb": 256,
        "secrets": ["slack"],
    }
    assert payloads["options.transform"]["handler"] == "transform"


def test_a_handler_used_twice_gets_numbered_task_ids():
    with DAG("twice") as definition:
        first = extract()
        transform(first) >> extract()
    assert list(definition.tasks) == ["extract", "transform", "extract__1"]
    assert upstream_of(definition.to_spec())["extract__1"] == ["transform"]
    with pytest.raises(AuthoringError, match="used 2 times"):
        with DAG("ambiguous"):
            extract()
            extract()
            extract >> transform


def test_a_callback_defined_in_the_file_becomes_a_function():
    with DAG("callbacks", on_failure=notify, on_success="post_slack") as definition:
        extract()
    spec = definition.to_spec()
    assert spec["on_failure"] == "callbacks.notify" and spec["on_success"] == "post_slack"
    assert set(definition.functions("S")) == {"callbacks.extract", "callbacks.notify"}


def test_outside_a_dag_a_task_is_its_handler():
    assert extract({"conf": None}, None) == {"rows": [1, 2, 3]}
    assert transform({"upstream": {"extract": {"rows": [1]}}}, None) == 1


def test_unknown_options_are_refused_at_once():
    with pytest.raises(TypeError, match="retry"):
        task(retry=3)(lambda event, context: None)
    with pytest.raises(TypeError, match="cron"):
        DAG("x", cron="* * * * *")


def test_shifting_outside_a_dag_says_where_it_belongs():
    with pytest.raises(AuthoringError, match="inside `with DAG"):
        extract >> transform


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


DAG_FILE = """\
from app.cli.authoring import DAG, task


@task
def first(event, context):
    return 1


@task(retries=1)
def second(event, context):
    return event["upstream"]["first"] + 1


with DAG("pair", schedule="0 3 * * *"):
    first >> second
"""


def test_collect_reads_functions_specs_and_python_dags_from_a_folder(tmp_path):
    write(tmp_path, "hello.py", "def handler(event, context):\n    return 1\n")
    write(tmp_path, "nested/pair.py", DAG_FILE)
    write(tmp_path, "nested/uses.json", '{"dag_id": "uses", "tasks": []}')
    write(tmp_path, "_private.py", "raise SystemExit")
    write(tmp_path, ".hidden/x.json", "not json")
    write(tmp_path, "notes.txt", "ignored")
    bundle = authoring.collect(tmp_path)
    assert sorted(bundle.functions) == ["hello", "pair.first", "pair.second"]
    assert sorted(bundle.dags) == ["pair", "uses"]
    assert set(bundle.functions["hello"]) == {"name", "source"}
    assert bundle.functions["pair.second"]["source"] == DAG_FILE
    assert bundle.functions["pair.second"]["handler"] == "second"
    assert bundle.origins["dag pair"] == tmp_path / "nested" / "pair.py"


def test_the_spec_validates_and_the_function_runs_in_the_sandbox(tmp_path):
    """What the CLI deploys is what the server accepts, and what a try runs: the sandbox
    loads the whole file and calls the decorated function by its name."""
    bundle = authoring.collect(write(tmp_path, "pair.py", DAG_FILE))
    spec = dagspec.parse_dag_spec(bundle.dags["pair"], set(bundle.functions))
    assert spec.task("second").upstream == ("first",) and spec.task("second").retries == 1
    payload = bundle.functions["pair.second"]
    handler = sandbox_child.load_handler(payload["source"], payload["handler"], "<pair.second>")
    event = {"conf": None, "args": {}, "upstream": {"first": 1}}
    assert handler(event, sandbox_child.Context(task_id="second")) == 2


def test_the_example_dag_is_valid():
    bundle = authoring.collect(EXAMPLE)
    assert list(bundle.dags) == ["example_taskflow"]
    assert dagspec.validate_dag_spec(bundle.dags["example_taskflow"], set(bundle.functions)) == []
    assert upstream_of(bundle.dags["example_taskflow"])["report"] == ["long_words", "count"]


@pytest.mark.parametrize(
    "source, message",
    [
        ("from app.cli.authoring import DAG\n\nx = 1 / 0\n", r"line 3: ZeroDivisionError"),
        ("from app.cli.authoring import task\n", "defines no DAG"),
        (
            "from app.cli.authoring import dag, task\n\n"
            "@dag\n"
            "def nested():\n"
            "    @task\n"
            "    def inner(event, context):\n"
            "        return 1\n"
            "    inner()\n",
            "must be defined at the top level",
        ),
        (
            "from app.cli.authoring import DAG, task\n\n"
            "with DAG('x'):\n"
            "    pass\n\n"
            "with DAG('x'):\n"
            "    pass\n",
            "dag x is defined twice",
        ),
    ],
)
def test_a_bad_dag_file_is_reported_with_its_name(tmp_path, source, message):
    path = write(tmp_path, "bad.py", source)
    with pytest.raises(AuthoringError, match=message) as raised:
        authoring.collect(path)
    assert str(path) in str(raised.value)


def test_the_same_name_in_two_files_is_refused(tmp_path):
    write(tmp_path, "a/hello.py", "def handler(event, context):\n    return 1\n")
    write(tmp_path, "b/hello.py", "def handler(event, context):\n    return 2\n")
    with pytest.raises(AuthoringError, match="function hello is defined twice"):
        authoring.collect(tmp_path)


def test_only_files_importing_the_module_are_dag_files():
    assert authoring.is_dag_file("from app.cli.authoring import DAG\n")
    assert authoring.is_dag_file("import app.cli.authoring\n")
    assert not authoring.is_dag_file("# from app.cli.authoring import DAG\nimport requests\n")
    assert not authoring.is_dag_file("def handler(event, context)\n")  # the server says why
