"""Small measuring helpers: percentiles, and the resident memory of a process and its
descendants, read from /proc."""

import statistics
from pathlib import Path

PROC = Path("/proc")


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
