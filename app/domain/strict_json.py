"""Strict JSON (RFC 8259), for every JSON Brisa reads or writes.

Python's ``json`` reads and writes ``NaN``, ``Infinity`` and ``-Infinity``, which RFC 8259 has
no place for and JavaScript's ``JSON.parse`` (so the UI) and most parsers refuse. ``loads``
refuses them, ``dumps`` never writes them, and ``problem`` names the first value a JSON
document cannot hold, with its path: ``result["ratio"]: float nan is not JSON``.
"""

import json
import math

SCALARS = (str, int, bool, type(None))


def _refuse(constant: str):
    raise ValueError(f"{constant} is not JSON (RFC 8259 has no NaN or Infinity)")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"{number[:40]} is too large for a float (at most about 1.8e308)")
    return value


MAX_DEPTH = 100  # the deepest nesting of arrays and objects Brisa reads, everywhere


class TooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH levels."""


TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels (Brisa reads JSON {MAX_DEPTH} levels deep)"


def loads(text: str | bytes):
    """Parse ``text``; raises ValueError for malformed JSON, for NaN, Infinity, -Infinity and
    for a number a float cannot hold (``1e400``, which Python would read as infinity), and
    TooDeep (a ValueError) for arrays and objects nested deeper than MAX_DEPTH levels: one
    limit at every door (API bodies, webhooks, the UI's conf, the CLI, DAG files)."""
    try:
        value = json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except RecursionError:
        raise TooDeep(TOO_DEEP) from None
    if depth(value) > MAX_DEPTH:
        raise TooDeep(TOO_DEEP)
    return value


def depth(value) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar: 0, ``[]``: 1). Walks
    without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def has_nul(value) -> bool:
    """Whether a string anywhere in ``value`` (a key too) holds NUL, which a Postgres text
    column refuses. Walks without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def dumps(value, path: str = "value", **options) -> str:
    """``json.dumps`` that raises ValueError with ``problem``'s message (``path`` names the
    root) for what JSON cannot hold, instead of writing NaN."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(problem(value, path) or f"{path}: {exc}") from None


def problem(value, path: str = "value", max_depth: int = 10_000) -> str | None:
    """The first value under ``value`` that strict JSON cannot hold, as ``<path>: <type> is
    not JSON`` (``path`` names the root, e.g. ``result``; a long path keeps its first and last
    steps), or None if it all can. Object keys must be strings, numbers, booleans or null
    (``json`` writes those as strings). Walks without recursion, to ``max_depth`` levels."""
    stack: list[tuple] = [(value, None, 0)]
    while stack:
        item, steps, depth = stack.pop()
        if depth > max_depth:
            return f"{_path(path, steps)}: nested deeper than {max_depth} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return f"{_path(path, steps)}: float {item} is not JSON"
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if not _is_key(key):
                    where = _path(path, steps)
                    return f"{where}: the key {key!r:.80} ({type(key).__name__}) is not JSON"
                stack.append((child, (steps, json.dumps(str(key))[:80]), depth + 1))
        elif isinstance(item, (list, tuple)):
            items = reversed(list(enumerate(item)))
            stack.extend((child, (steps, str(i)), depth + 1) for i, child in items)
        elif not isinstance(item, SCALARS + (float,)):
            return f"{_path(path, steps)}: {type(item).__name__} is not JSON"
    return None


def _is_key(key) -> bool:
    return isinstance(key, SCALARS) or (isinstance(key, float) and math.isfinite(key))


def _path(root: str, steps) -> str:
    """``root["a"][0]``, from the linked steps (parent, step); 12 steps at most shown."""
    parts = []
    while steps is not None:
        steps, step = steps
        parts.append(f"[{step}]")
    parts.reverse()
    if len(parts) > 12:
        parts = [*parts[:4], f"...({len(parts) - 10} more)...", *parts[-6:]]
    return root + "".join(parts)
