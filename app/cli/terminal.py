"""The CLI's output: aligned tables, states in colour, progress lines, and the short forms of
times and durations its tables show."""

import json
import os
import sys

COLOURS = {  # ANSI codes by state (runs, tasks), deploy status, and yes for PAUSED
    "success": "32",
    "failed": "31",
    "upstream_failed": "31",
    "cancelled": "35",
    "running": "33",
    "up_for_retry": "33",
    "queued": "36",
    "none": "2",
    "skipped": "2",
    "new": "32",
    "changed": "33",
    "unchanged": "2",
    "yes": "33",
    "warning": "33",  # the dev server's lines by log level
    "error": "31",
}
PAINTED_COLUMNS = ("STATE", "PAUSED")


class Terminal:
    """Prints to stdout: aligned tables, states in colour when stdout is a terminal and
    NO_COLOR is unset; progress goes to stderr, so ``--json`` output stays clean."""

    def __init__(self, as_json: bool = False):
        self.as_json = as_json
        self.colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        self.live = sys.stderr.isatty()
        self._progress = ""

    def paint(self, text: str, key: str) -> str:
        code = COLOURS.get(key)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def emit(self, data, render) -> int:
        """``--json``: the API's answer as is; otherwise ``render(data)``."""
        if self.as_json:
            self.line(shown_json(data, indent=2))
        else:
            render(data)
        return 0

    def table(self, headers: list[str], rows: list[list]) -> None:
        """Columns aligned; the STATE and PAUSED columns painted by their values."""
        cells = [[cell(value) for value in row] for row in rows]
        widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=True)]
        self.line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in cells:
            padded = [
                self.paint(text.ljust(w), text) if header in PAINTED_COLUMNS else text.ljust(w)
                for header, text, w in zip(headers, row, widths, strict=True)
            ]
            self.line("  ".join(padded).rstrip())

    def progress(self, text: str) -> None:
        """One line rewritten in place on a terminal; elsewhere a line per change."""
        if text == self._progress:
            return
        self._progress = text
        sys.stderr.write(f"\r\x1b[2K{text}" if self.live else f"{text}\n")
        sys.stderr.flush()

    def end_progress(self) -> None:
        if self.live and self._progress:
            sys.stderr.write("\n")
        self._progress = ""


def shown_json(value, indent: int | None = None) -> str:
    """JSON for people: non-ASCII as text, not \\u escapes, unless stdout cannot encode it."""
    utf = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").startswith("utf")
    return json.dumps(value, indent=indent, ensure_ascii=not utf)


def cell(value) -> str:
    """A table cell: ``-`` for nothing, yes/no for booleans."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def timestamp(iso: str | None) -> str | None:
    """2026-03-01T03:00:00.000Z -> 2026-03-01 03:00:00 (UTC)."""
    return iso[:19].replace("T", " ") if iso else None


def duration(seconds: float | None) -> str | None:
    """0.014 -> 14ms, 2.345 -> 2.3s."""
    if seconds is None:
        return None
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"
