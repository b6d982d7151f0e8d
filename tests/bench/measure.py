"""Small measuring helpers: percentiles, and the resident memory and CPU time of a process
and its descendants, read from /proc."""

import os
import statistics
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def latency_summary(seconds: list[float], wall_s: float) -> dict:
    return {
        "calls": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "per_s": round(len(seconds) / wall_s, 1),
    }


def resident_mb(pid: int) -> dict:
    """RSS, and PSS (each shared page split among the processes that map it), in MB."""
    fields = {}
    for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    # a zombie has no resident set
    return {
        key: round(fields.get(name, 0) / 1024, 1)
        for key, name in (("rss_mb", "Rss"), ("pss_mb", "Pss"))
    }


def parent_of(stat: str) -> int:
    """The ppid field of /proc/<pid>/stat (after the command name, which may hold spaces)."""
    return int(stat.rpartition(")")[2].split()[1])


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, depth) of every process below ``pid``: its children at depth 1."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(parent_of((entry / "stat").read_text()), []).append(
                    int(entry.name)
                )
            except (FileNotFoundError, ProcessLookupError):
                continue  # it exited meanwhile
    found, pending = [], [(child, 1) for child in children.get(pid, [])]
    while pending:
        child, depth = pending.pop()
        found.append((child, depth))
        pending.extend((grandchild, depth + 1) for grandchild in children.get(child, []))
    return sorted(found)


def describe(pid: int, depth: int) -> str:
    """What a process below the worker is: the sandbox's fork server, multiprocessing's
    resource tracker, or (below the fork server) a sandbox child: a try, or a spare."""
    if depth > 1:
        return "sandbox child"
    command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    for marker, name in (("forkserver", "fork server"), ("resource_tracker", "resource tracker")):
        if marker in command:
            return name
    return command[:80] or "?"


def child_memory(pid: int, depth: int) -> dict | None:
    try:
        return {"pid": pid, "what": describe(pid, depth), **resident_mb(pid)}
    except (FileNotFoundError, ProcessLookupError):
        return None  # a try's process that exited meanwhile


def process_tree_memory(pid: int) -> dict:
    """RSS of the process, of each descendant (the sandbox's fork server and what it forked),
    and together (pages they share are counted in each); and PSS together (counted once)."""
    own = resident_mb(pid)
    children = [m for m in (child_memory(*d) for d in descendants(pid)) if m is not None]
    children_mb = round(sum(c["rss_mb"] for c in children), 1)
    return {
        "worker_mb": own["rss_mb"],
        "children_mb": children_mb,
        "total_mb": round(own["rss_mb"] + children_mb, 1),
        "total_pss_mb": round(own["pss_mb"] + sum(c["pss_mb"] for c in children), 1),
        "children": children,
    }


def _cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime + stime, cutime + cstime) of /proc/<pid>/stat: the process's own CPU (every
    thread's), and that of the children it reaped (with theirs, recursively)."""
    fields = (PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return utime + stime, cutime + cstime


def process_tree_cpu_s(pid: int) -> dict:
    """CPU seconds used so far by the process (``own_s``) and by every process below it,
    living or reaped by a living one (``children_s``): a try's child, which the fork server
    reaps, counts there once it exited. A process that exited meanwhile is skipped."""
    own, reaped = _cpu_ticks(pid)
    below = 0
    for child, _depth in descendants(pid):
        try:
            below += sum(_cpu_ticks(child))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return {"own_s": own / CLOCK_TICKS_PER_S, "children_s": (reaped + below) / CLOCK_TICKS_PER_S}


class CpuMeter:
    """Sums the CPU the process trees of ``pids`` use while inside ``with meter:`` blocks."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.own_s = self.children_s = 0.0
        self._started: list[dict] = []

    def __enter__(self) -> "CpuMeter":
        self._started = [process_tree_cpu_s(pid) for pid in self.pids]
        return self

    def __exit__(self, *exc_info) -> None:
        for pid, started in zip(self.pids, self._started, strict=True):
            now = process_tree_cpu_s(pid)
            self.own_s += now["own_s"] - started["own_s"]
            self.children_s += now["children_s"] - started["children_s"]

    def per_task_ms(self, tasks: int) -> dict:
        """The CPU per task in ms: the worker processes', their children's, and both."""
        own, children = 1000 * self.own_s / tasks, 1000 * self.children_s / tasks
        return {
            "worker_ms": round(own, 2),
            "children_ms": round(children, 2),
            "total_ms": round(own + children, 2),
        }
