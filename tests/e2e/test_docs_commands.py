"""What the docs show, works: every shell block in README.md and docs/*.md that talks to Brisa
runs against a live instance, and the output it shows is checked.

Which blocks. The ```sh and ```bash blocks of README.md and docs/*.md (not docs/api.md, which
is generated) that talk to Brisa (``curl``, ``python -m app``, ``/hooks/``, its address,
``make run``) or write a file the recipes read (``cat > FILE <<``). A block right after a line
``<!-- not run: reason -->`` is skipped, and the doc says why. A ```python block whose first
line is ``# NAME.py`` is saved as NAME.py, as a reader saves it. (No ```console blocks: a
command and what it prints are two blocks.)

The live instance. One per doc file: the Procfile's processes on the embedded default, with
the examples in functions/ deployed as ``make run`` deploys them, so run ids start at 1 as on
a fresh ``make run``. The blocks run in order, each with ``bash -e -o pipefail``, in one
scratch folder (with a ``.venv`` link to the repository's), with the instance's environment
(so operator commands such as ``prune`` work on its database, as in the folder ``make run``
runs in) and the variables the blocks before it set, as if pasted into one terminal. The
only substitutions: ``http://127.0.0.1:8000`` becomes the live base URL and the placeholder
token ``brisa_...`` the live admin token; and ``BRISA_URL``, ``BRISA_TOKEN`` (and the short
names the docs give them, ``BRISA`` and ``TOKEN``) are set. Before each block every run
started so far is let finish (a reader takes longer between two blocks than a run takes);
after the file, every run its blocks started must have succeeded, as the docs imply.

The shown output. The ```json, ```text or bare ``` block right after a command block's
closing fence is what the block prints on stdout, line by line, blank lines ignored. In it,
``…`` (and the spaces around it) stands for any text within a line, and a line ``…`` for
any number of lines; a timestamp (``2026-11-25T19:52:21.427Z``, ``2026-11-25 19:52:21,793``,
``2026-03-01 09:12:44``) matches any of its shape and a ``whsec_...`` secret any secret.
Everything else is exact.
"""

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN_TOKEN
from tests.system import AUTH, ROOT, procfile_system

DOC_FILES = [ROOT / "README.md"] + sorted(
    path for path in (ROOT / "docs").glob("*.md") if path.name != "api.md"
)
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
SHELL_LANGS = {"sh", "bash"}
OUTPUT_LANGS = {"", "json", "text"}
TALKS_TO_BRISA = re.compile(
    r"\bcurl\b|-m app\b|/hooks/|127\.0\.0\.1:8000|\$BRISA|\bmake run\b|^cat > \S+ <<", re.M
)
NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")
FILE_NAME = re.compile(r"^# ([\w.-]+\.py)$")
DOC_BASE = "http://127.0.0.1:8000"
TOKEN_PLACEHOLDER = "brisa_..."
ANY_LINES = "…"
PLACEHOLDER_PATTERNS = {
    "iso": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z",
    "local": r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(,\d{3})?",
    "secret": r"whsec_[A-Za-z0-9+/=]{40,}",
}
PLACEHOLDERS = re.compile("|".join(f"(?P<{k}>{v})" for k, v in PLACEHOLDER_PATTERNS.items()))
BLOCK_TIMEOUT_S = 60
SESSION = ".session"  # the variables the blocks so far set, as ``export -p`` prints them
RUNS_DONE = ("success", "failed", "cancelled", "upstream_failed")


@dataclass
class Block:
    """A fenced block: ``lang`` (sh, python, ...), its ``text`` (dedented), the 1-based
    ``line`` of its opening fence, the ``output`` block right after it (None: none shown)
    and the reason of its ``<!-- not run -->`` marker (None: run it)."""

    lang: str
    text: str
    line: int
    output: str | None = None
    not_run: str | None = None

    @property
    def runs(self) -> bool:
        return self.lang in SHELL_LANGS and bool(TALKS_TO_BRISA.search(self.text))

    @property
    def file_name(self) -> str | None:
        """NAME.py for a python block that opens with ``# NAME.py``, else None."""
        match = FILE_NAME.match(self.text.partition("\n")[0])
        return match.group(1) if self.lang == "python" and match else None


def parse_blocks(markdown: str) -> list[Block]:
    """Every fenced block of ``markdown`` that is not an output block, in order; an output
    block (bare, json or text) right after a shell block's closing fence is its ``output``."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    index = 0
    previous_end = -2
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, lang = opening.groups()
        end = index + 1
        while lines[end].strip() != "```":
            end += 1
        text = "\n".join(line[len(indent) :] for line in lines[index + 1 : end]) + "\n"
        follows_shell = previous_end == index - 1 and blocks and blocks[-1].lang in SHELL_LANGS
        if follows_shell and lang in OUTPUT_LANGS:
            blocks[-1].output = text
        else:
            marker = NOT_RUN.match(lines[index - 1].strip()) if index else None
            blocks.append(Block(lang, text, index + 1, not_run=marker and marker.group(1)))
        previous_end = end
        index = end + 1
    return blocks


def line_pattern(shown: str) -> list[re.Pattern]:
    """The pieces of a shown line between its ``…``s, as patterns (placeholders generalised)."""
    pieces = []
    for piece in re.split(r"\s*…\s*", shown):
        parts, position = [], 0
        for match in PLACEHOLDERS.finditer(piece):
            parts.append(re.escape(piece[position : match.start()]))
            parts.append(PLACEHOLDER_PATTERNS[match.lastgroup or ""])
            position = match.end()
        parts.append(re.escape(piece[position:]))
        pieces.append(re.compile("".join(parts)))
    return pieces


def line_matches(shown: str, actual: str) -> bool:
    """Whether ``actual`` is ``shown`` with each ``…`` replaced by some text (each piece at its
    leftmost fit: the pieces are literal but for fixed-shape placeholders)."""
    pieces = line_pattern(shown)
    if len(pieces) == 1:
        return bool(pieces[0].fullmatch(actual))
    first, *middle, last = pieces
    start = first.match(actual)
    if not start:
        return False
    position = start.end()
    for piece in middle:
        found = piece.search(actual, position)
        if not found:
            return False
        position = found.end()
    return any(last.fullmatch(actual, at) for at in range(position, len(actual) + 1))


def output_matches(shown: list[str], actual: list[str]) -> bool:
    """Whether the ``actual`` lines are the ``shown`` ones, a line ``…`` standing for any
    number of lines."""
    if not shown:
        return not actual
    if shown[0].strip() == ANY_LINES:
        return any(output_matches(shown[1:], actual[skip:]) for skip in range(len(actual) + 1))
    return (
        bool(actual) and line_matches(shown[0], actual[0]) and output_matches(shown[1:], actual[1:])
    )


def non_blank(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def runs_so_far(base: str) -> list[tuple[int, str, list]]:
    """(run id, state, its tasks' errors) of every run so far: ids from 1 to the first unknown."""
    runs: list[tuple[int, str, list]] = []
    while True:
        answer = requests.get(f"{base}/api/v1/runs/{len(runs) + 1}", headers=AUTH, timeout=5)
        if answer.status_code == 404:
            return runs
        run = answer.json()
        errors = [task["error"] for task in run["tasks"] if task["error"]]
        runs.append((run["run_id"], run["state"], errors))


def wait_for_runs(base: str, timeout: float = 60) -> list[tuple[int, str, list]]:
    """Every run so far, once all are finished (or the timeout has passed)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_so_far(base)
        if all(state in RUNS_DONE for _, state, _ in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.1)


def scratch_folder(tmp_path: Path, system_env: dict, base: str) -> tuple[Path, dict]:
    """The folder the blocks run in and their environment: the instance's (its database for
    the operator commands, as in the folder ``make run`` runs in), with the client's."""
    folder = tmp_path / "reader"
    folder.mkdir()
    (folder / ".venv").symlink_to(ROOT / ".venv")
    (folder / SESSION).write_text("")
    client = {"BRISA_URL": base, "BRISA_TOKEN": ADMIN_TOKEN, "BRISA": base, "TOKEN": ADMIN_TOKEN}
    return folder, {**system_env, **client}


def run_block(block: Block, folder: Path, env: dict, base: str) -> subprocess.CompletedProcess:
    """Runs one block (bash -e, pipefail, after the substitutions) with the variables the
    blocks before it set, as in one terminal; returns what it did."""
    commands = block.text.replace(DOC_BASE, base).replace(TOKEN_PLACEHOLDER, ADMIN_TOKEN)
    script = f"set -a\ntrap 'export -p > {SESSION}' EXIT\n. ./{SESSION}\n{commands}"
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )


def deploy_examples(env: dict) -> None:
    """The examples, deployed as ``make run`` deploys them (``deploy --local functions``)."""
    command = ["python", "-m", "app", "deploy", "--local", "functions"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def check_block(block: Block, folder: Path, env: dict, base: str, where: str) -> str | None:
    """Runs one block; what is wrong with it (None: it exited 0 and printed what it shows)."""
    done = run_block(block, folder, env, base)
    if done.returncode:
        return f"{where} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    if block.output is not None and not output_matches(
        non_blank(block.output), non_blank(done.stdout)
    ):
        return f"{where} shows\n{block.output}but printed\n{done.stdout}"
    return None


def runnable_files() -> list[Path]:
    return [path for path in DOC_FILES if any(b.runs for b in parse_blocks(path.read_text()))]


@pytest.mark.e2e
@pytest.mark.parametrize("doc", runnable_files(), ids=lambda path: path.name)
def test_doc_commands_work(doc: Path, tmp_path):
    """Each block of ``doc`` that talks to Brisa runs and prints what the doc shows, and each
    run the blocks start succeeds."""
    failures = []
    with procfile_system("sqlite", tmp_path / "var") as system:
        deploy_examples(system.env)
        folder, env = scratch_folder(tmp_path, system.env, system.base)
        for block in parse_blocks(doc.read_text()):
            if block.file_name:
                (folder / block.file_name).write_text(block.text)
            if block.runs and not block.not_run:
                wait_for_runs(system.base)
                where = f"{doc.name}:{block.line}"
                failures.append(check_block(block, folder, env, system.base, where))
        runs = wait_for_runs(system.base)
    assert not any(failures), "\n\n".join(filter(None, failures))
    assert all(state == "success" for _, state, _ in runs), runs


@pytest.mark.parametrize(
    ("shown", "actual", "matches"),
    [
        ('{"a":1, … ,"c":3}', '{"a":1,"b":2,"c":3}', True),
        ('{"a":1, … ,"c":3}', '{"a":1,"b":2,"c":4}', False),
        ('{"a":1,"c":3}', '{"a":1,"b":2,"c":3}', False),
        ('"sha256":"815e0432…"', '"sha256":"815e0432606ac1"', True),
        ('"sha256":"815e0432…"', '"sha256":"a370105f606ac1"', False),
        ('{"at":"2026-11-25T19:52:21.427Z"}', '{"at":"2026-12-06T03:28:12.614Z"}', True),
        ('{"at":"2026-11-25T19:52:21.427Z"}', '{"at":null}', False),
        ('"s":"whsec_' + "A" * 43 + '="', '"s":"whsec_' + "b/+" * 14 + 'c="', True),
        ("hello v1      …         {}  -", "hello v1      126ms     {}  -", True),
        ("date 2026-03-01 09:12:44  conf", "date 2026-12-06 03:29:42  conf", True),
        ("date 2026-03-01 09:12:44  conf", "date 2026-12-06  conf", False),
    ],
)
def test_a_shown_line_matches(shown, actual, matches):
    assert line_matches(shown, actual) is matches


def test_a_line_of_only_an_ellipsis_stands_for_any_lines():
    assert output_matches(["…", "b"], ["x", "y", "b"])
    assert output_matches(["a", "…"], ["a"])
    assert not output_matches(["a", "…", "b"], ["a", "x"])
    assert not output_matches(["a"], ["a", "b"])


def test_the_docs_keep_the_conventions():
    """No ```console blocks (they would not run), and a not-run marker only on a block that
    would run otherwise (the skip list stays short)."""
    blocks = [block for path in DOC_FILES for block in parse_blocks(path.read_text())]
    assert not [block.line for block in blocks if block.lang == "console"]
    assert all(block.runs for block in blocks if block.not_run)
