"""The layout's rules (docs/architecture.md, "Layers"), read from the code's
syntax trees: every import, at module level or inside a function, counts.

- no import cycle among app modules;
- each package imports only the layers below it (LAYERS), and app/domain nothing of peewee,
  huey or Flask;
- each process's entry point reaches only what that process runs: the web never loads the
  sandbox, the clock never loads the worker, the CLI never builds the queue;
- only app/store/transitions.py writes a ``state`` column of a run or task instance;
- ``import app.cli.commands`` creates no file.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"

# What each part of app/ may import from app/ (itself included). Top-level modules count as
# parts of their own: config and log_setup are below everything, broker between the engine and
# the processes.
LAYERS = {
    "app.config": set(),
    "app.log_setup": set(),
    "app.domain": {"app.domain"},
    "app.store": {"app.store", "app.domain", "app.config"},
    "app.engine": {"app.engine", "app.store", "app.domain", "app.config"},
    "app.sandbox": {"app.sandbox", "app.domain"},
    "app.broker": {"app.engine", "app.store", "app.domain", "app.config", "app.log_setup"},
    "app.worker": {
        *("app.worker", "app.sandbox", "app.broker", "app.engine", "app.store", "app.domain"),
        "app.config",
    },
    "app.clock": {
        *("app.clock", "app.broker", "app.engine", "app.store", "app.domain", "app.config"),
        "app.log_setup",
    },
    "app.web": {
        *("app.web", "app.broker", "app.engine", "app.store", "app.domain", "app.config"),
        "app.log_setup",
    },
    "app.cli": {
        *("app.cli", "app.engine", "app.store", "app.domain", "app.config", "app.log_setup"),
        "app.engine.serialize",  # deploy --local compares with what the API would answer
    },
    "app.__main__": {"app.cli"},
}
FORBIDDEN_IN_DOMAIN = ("peewee", "huey", "flask", "werkzeug", "redis", "psycopg2")
# Entry points, and what each process must never load.
PROCESSES = {
    "app.web.wsgi": ("app.sandbox", "app.worker", "app.clock", "app.cli"),
    "app.clock.periodic": ("app.sandbox", "app.worker", "app.web", "app.cli"),
    "app.worker.consumer": ("app.web", "app.clock", "app.cli"),
    "app.cli.commands": ("app.broker", "app.sandbox", "app.worker", "app.clock"),
}
WRITES = {"update", "insert", "insert_many", "create", "get_or_create", "replace", "save"}
STATE_MODULE = "app.store.transitions"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules(root: Path = APP) -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(), str(path))
        for path in sorted(root.rglob("*.py"))
    }


def imports(tree: ast.Module, known: set[str], package: str) -> set[str]:
    """The app modules (in ``known``) and outside packages that ``tree`` imports, anywhere."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            submodules = {f"{base}.{a.name}" for a in node.names} & known
            found |= submodules
            if len(submodules) < len(node.names):  # a name defined in the module itself
                found.add(base)
    return {name for name in found if name in known or not name.startswith("app")}


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    known = set(modules)
    edges = {}
    for name, tree in modules.items():
        package = name if _is_package(name) else name.rpartition(".")[0]
        edges[name] = {m for m in imports(tree, known, package) if m in known and m != name}
    return edges


def _is_package(name: str) -> bool:
    return (ROOT / name.replace(".", "/") / "__init__.py").exists()


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer_of(name: str) -> str:
    for layer in sorted(LAYERS, key=len, reverse=True):
        if name == layer or name.startswith(layer + "."):
            return layer
    raise KeyError(f"{name} is in no layer: add it to LAYERS")


def layer_violations(modules: dict[str, ast.Module]) -> list[str]:
    problems = []
    for name, targets in graph(modules).items():
        if name == "app":
            continue
        allowed = LAYERS[layer_of(name)]
        for target in sorted(targets - {"app"}):
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                problems.append(f"{name} imports {target}")
    return problems


def domain_violations(modules: dict[str, ast.Module]) -> list[str]:
    known = set(modules)
    return [
        f"{name} imports {target}"
        for name, tree in modules.items()
        if name.startswith("app.domain")
        for target in sorted(imports(tree, known, "app.domain"))
        if target.split(".")[0] in FORBIDDEN_IN_DOMAIN
    ]


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += edges.get(name, ())
            parent = name.rpartition(".")[0]
            if parent:  # importing app.x.y runs app/x/__init__.py
                todo.append(parent)
    return seen


def state_writes(modules: dict[str, ast.Module]) -> list[str]:
    """Writes of a ``state`` column outside the transitions module: ``state=`` or a
    ``"state"``/``Model.state`` key given to a write (update, insert, create, ...) or to
    ``dict(...)`` rows, and ``x.state = ...`` in a function that saves. TaskTry, the history
    of tries, is not a state machine and may be written where tries end."""
    found = []
    for name, tree in modules.items():
        if name == STATE_MODULE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _writes_state(node):
                found.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _saves_state(node):
                found.append(f"{name}:{node.lineno}")
    return sorted(found)


def _writes_state(call: ast.Call) -> bool:
    func = call.func
    is_dict = isinstance(func, ast.Name) and func.id == "dict"
    is_write = isinstance(func, ast.Attribute) and func.attr in WRITES
    if not (is_dict or is_write) or _on_history(func):
        return False
    if any(k.arg == "state" for k in call.keywords):
        return True
    return any(_has_state_key(arg) for arg in call.args)


def _on_history(func) -> bool:
    target = func.value if isinstance(func, ast.Attribute) else None
    return isinstance(target, ast.Name) and target.id == "TaskTry"


def _has_state_key(node) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Dict):
            for key in inner.keys:
                if isinstance(key, ast.Constant) and key.value == "state":
                    return True
                if isinstance(key, ast.Attribute) and key.attr == "state":
                    return True
    return False


def _saves_state(function) -> bool:
    assigns = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "state" for t in node.targets)
        for node in ast.walk(function)
    )
    saves = any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "save"
        for node in ast.walk(function)
    )
    return assigns and saves


@pytest.fixture(scope="module")
def modules():
    return app_modules()


def test_no_import_cycles(modules):
    assert cycles(graph(modules)) == []


def test_each_package_imports_only_the_layers_below_it(modules):
    assert layer_violations(modules) == []


def test_the_domain_is_pure(modules):
    assert domain_violations(modules) == []


@pytest.mark.parametrize("entry", sorted(PROCESSES))
def test_a_process_loads_only_what_it_runs(modules, entry):
    loaded = reachable(graph(modules), entry)
    assert sorted(m for m in loaded if m.startswith(PROCESSES[entry])) == []


def test_only_the_transitions_module_writes_a_state(modules):
    assert state_writes(modules) == []


def test_importing_the_cli_creates_no_file(tmp_path):
    env = {**os.environ, "BRISA_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}
    env.pop("SECRET_KEY", None)
    subprocess.run([sys.executable, "-c", "import app.cli.commands"], env=env, check=True)
    assert list(tmp_path.iterdir()) == []


# The test of the test: each rule fails on code that breaks it. ----------------------------


def write_tree(root: Path, files: dict[str, str]) -> dict[str, ast.Module]:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {module_name_in(root, path): ast.parse(path.read_text()) for path in root.rglob("*.py")}


def module_name_in(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    modules = write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/engine/__init__.py": "",
            "app/engine/a.py": "from app.engine import b\n",
            "app/engine/b.py": "def f():\n    from app.engine import a\n",
        },
    )
    assert cycles(graph(modules)) == [["app.engine.a", "app.engine.b"]]


def test_an_upward_import_and_an_impure_domain_are_found(tmp_path):
    modules = write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/engine/__init__.py": "",
            "app/engine/runs.py": "from app.worker import try_runner\n",
            "app/worker/__init__.py": "",
            "app/worker/try_runner.py": "",
            "app/domain/__init__.py": "",
            "app/domain/rules.py": "import peewee\n",
        },
    )
    assert layer_violations(modules) == ["app.engine.runs imports app.worker.try_runner"]
    assert domain_violations(modules) == ["app.domain.rules imports peewee"]


def test_state_writes_outside_the_transitions_module_are_found(tmp_path):
    modules = write_tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/engine/__init__.py": "",
            "app/engine/bad.py": (
                "def a():\n    TaskInstance.update(state='failed').execute()\n"
                "def b():\n    DagRun.insert_many([{'state': 'queued'}]).execute()\n"
                "def c(ti):\n    ti.state = 'success'\n    ti.save()\n"
                "def d():\n    return dict(state='none')\n"
                "def ok():\n    TaskTry.insert(state='success').execute()\n"
            ),
        },
    )
    assert state_writes(modules) == [
        "app.engine.bad:2",
        "app.engine.bad:4",
        "app.engine.bad:5",
        "app.engine.bad:9",
    ]
