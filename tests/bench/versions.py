"""The key figures of every full ``make bench`` so far: docs/bench/results.json's "history".

Each entry: {"date": ISO 8601 UTC, "commit": the commit measured (the working tree's HEAD;
"dirty": true when it had uncommitted changes), "method": METHOD, "load_average_at_start",
"backends": {backend: {name: figure}}} with the names of KEY_FIGURES. The first entries were
seeded from the earlier versions of results.json in git (``seeded_from_git``): their commit is
the one that recorded them. ``python -m tests.bench.versions`` seeds the file's history
without measuring anything (once: a file that has a history keeps it).
"""

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.targets import figure_at

# name in an entry -> (where it is in a backend's figures, what it is)
KEY_FIGURES = {
    "chain40_s": ("chain40.wall_s", "chain40, trigger → success (s)"),
    "handoff_p50_ms": ("chain40.handoff_p50_ms", "chain40 hand-off p50 (ms)"),
    "chain_vs_huey": ("chain40.vs_raw_huey", "chain40 ÷ bare huey's (×)"),
    "fanout_per_s": ("fanout1000.tasks_per_s", "fanout1000 (tasks/s)"),
    "fanout_share_pct": ("fanout1000.share_of_raw_huey", "fanout1000, % of bare huey's"),
    "invoke_p50_ms": ("invoke.sequential.p50_ms", "invoke, 1 client p50 (ms)"),
    "invoke16_per_s": ("invoke.concurrent.per_s", "invoke, 16 clients (req/s)"),
    "webhooks_per_s": ("webhooks.accepted_per_s", "webhooks accepted (/s)"),
    "tick_s": ("tick.duration_s", "tick, 10,000 DAGs (s)"),
    "idle_mb": ("worker_memory.idle.total_mb", "worker idle RSS (MB)"),
    "scaleout_ratio": ("scaleout.ratio", "2 worker processes ÷ 1 (×)"),
}
# 1: before issue #18 (bare huey stored each result; the hand-off was read from the database's
# timestamps, the next function's process start counted as task time; the shared Postgres).
# 2: since (bare huey as Brisa's huey, no results; the hand-off from one function's return to
# the next one's first line; the bench's own Postgres and Redis).
METHOD = 2
# The first versions of results.json (before the "figures" key) held one comparable figure.
FIRST_FORMAT = {"invoke_p50_ms": "invoke.p50_ms"}
RESULTS_PATH = "docs/bench/results.json"


def key_figures(backend: dict) -> dict:
    """The KEY_FIGURES a backend's results hold (older versions lack some)."""
    if "figures" in backend:
        figures, paths = backend["figures"], {name: p for name, (p, _) in KEY_FIGURES.items()}
    else:
        figures, paths = backend, FIRST_FORMAT
    found = {}
    for name, path in paths.items():
        try:
            found[name] = figure_at(figures, path)
        except (KeyError, TypeError):
            continue
    return found


def entry(results: dict, date: str, commit: str, dirty: bool, method: int = METHOD) -> dict:
    return {
        "date": date,
        "commit": commit,
        "dirty": dirty,
        "method": method,
        "load_average_at_start": results["machine"].get("load_average_at_start"),
        "backends": {name: key_figures(backend) for name, backend in results["backends"].items()},
    }


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def current_commit(root: Path) -> tuple[str, bool]:
    """The HEAD commit, and whether tracked files have uncommitted changes."""
    changed = git(root, "status", "--porcelain", "--untracked-files=no")
    return git(root, "rev-parse", "HEAD"), bool(changed)


def seeded_from_git(root: Path) -> list[dict]:
    """An entry for each committed version of results.json that holds a full run, oldest
    first, dated by its commit."""
    entries = []
    for line in reversed(git(root, "log", "--format=%H %cI", "--", RESULTS_PATH).splitlines()):
        commit, date = line.split()
        results = json.loads(git(root, "show", f"{commit}:{RESULTS_PATH}"))
        if results.get("quick") or "backends" not in results:
            continue
        utc = datetime.fromisoformat(date).astimezone(UTC).isoformat(timespec="seconds")
        entries.append(entry(results, utc, commit, dirty=False, method=1))
    return entries


def with_history(results: dict, previous: dict | None, root: Path) -> dict:
    """``results`` with the history of ``previous`` (the file it replaces; seeded from git if
    that has none) and an entry for itself."""
    history = (previous or {}).get("history") or seeded_from_git(root)
    commit, dirty = current_commit(root)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return {**results, "history": [*history, entry(results, now, commit, dirty)]}


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    path = root / RESULTS_PATH
    results = json.loads(path.read_text())
    if results.get("history"):
        print(f"{RESULTS_PATH} has a history of {len(results['history'])} entries already")
        return 0
    results["history"] = seeded_from_git(root)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"{RESULTS_PATH}: {len(results['history'])} entries seeded from git")
    return 0


if __name__ == "__main__":
    sys.exit(main())
