"""docs/bench/history.svg: the key figures of every full ``make bench`` so far, from the
"history" of docs/bench/results.json (tests/bench/versions.py), drawn as plain SVG.

    python -m tests.bench.chart [RESULTS] [SVG]

One panel per key figure: a line per backend across the runs (oldest left), the Postgres +
Redis target dashed where there is one, and a dotted rule where the method changed (the
lines break there: the figures before it are not comparable). Each point's tooltip names its
date and commit. ``make bench`` redraws it after each full run.
"""

import json
import sys
from html import escape
from pathlib import Path

from tests.bench.targets import TARGETS
from tests.bench.versions import KEY_FIGURES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "bench" / "results.json"
CHART = ROOT / "docs" / "bench" / "history.svg"
COLOURS = {"postgres": "#1f6fb4", "embedded": "#e07b00"}
LABELS = {"postgres": "Postgres + Redis", "embedded": "embedded default (SQLite)"}
COLUMNS, PANEL_W, PANEL_H, MARGIN = 3, 300, 170, 40
PLOT = {"left": 46, "right": 12, "top": 28, "bottom": 30}  # within a panel
HEADER_H = 56


def target_of(path: str) -> float | None:
    """The Postgres + Redis limit of the target on ``path``, if it has one."""
    for target in TARGETS:
        if target.path == path and target.limit is not None:
            return target.limit
    return None


def series(history: list[dict], name: str, backend: str) -> list[tuple[int, float]]:
    """(entry index, figure) of each entry that has it."""
    points = []
    for index, entry in enumerate(history):
        value = entry.get("backends", {}).get(backend, {}).get(name)
        if isinstance(value, int | float):
            points.append((index, float(value)))
    return points


def segments(history: list[dict], points: list[tuple[int, float]]) -> list[list]:
    """The points split where the method changed between two consecutive ones."""
    parts: list[list] = []
    for point in points:
        if parts and history[parts[-1][-1][0]].get("method") == history[point[0]].get("method"):
            parts[-1].append(point)
        else:
            parts.append([point])
    return parts


def short_date(iso: str) -> str:
    """'2026-11-25T16:52:47+00:00' -> '11-25 16:52' (UTC)."""
    return iso[5:16].replace("T", " ")


def describe(entry: dict) -> str:
    """'2026-11-25T20:54:16+00:00, commit a1edf542a3' (and whether it had changes)."""
    dirty = " with uncommitted changes" if entry.get("dirty") else ""
    return f"{entry['date']}, commit {entry['commit'][:10]}{dirty}"


def tick_label(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


class Panel:
    """One figure's plot at (x, y), mapping entry indexes and values to its pixels."""

    def __init__(self, x: float, y: float, entries: int, top: float):
        self.x, self.y, self.entries, self.top = x, y, entries, top or 1.0
        self.width = PANEL_W - PLOT["left"] - PLOT["right"]
        self.height = PANEL_H - PLOT["top"] - PLOT["bottom"]

    def px(self, index: float) -> float:
        share = index / (self.entries - 1) if self.entries > 1 else 0.5
        return round(self.x + PLOT["left"] + share * self.width, 1)

    def py(self, value: float) -> float:
        return round(self.y + PLOT["top"] + self.height * (1 - value / self.top), 1)


def axes(panel: Panel, title: str, history: list[dict]) -> list[str]:
    left, bottom = panel.x + PLOT["left"], panel.y + PLOT["top"] + panel.height
    parts = [
        f'<text x="{left}" y="{panel.y + 16}" class="title">{escape(title)}</text>',
        f'<line x1="{left}" y1="{bottom}" x2="{left + panel.width}" y2="{bottom}" class="axis"/>',
        f'<line x1="{left}" y1="{panel.py(panel.top)}" x2="{left}" y2="{bottom}" class="axis"/>',
    ]
    for value in (0, panel.top / 2, panel.top):
        parts.append(
            f'<text x="{left - 4}" y="{panel.py(value) + 4}" class="tick" '
            f'text-anchor="end">{tick_label(value)}</text>'
        )
    for index in sorted({0, len(history) - 1}):
        parts.append(
            f'<text x="{panel.px(index)}" y="{bottom + 14}" class="tick" '
            f'text-anchor="middle">{escape(short_date(history[index]["date"]))}</text>'
        )
    return parts


def method_rules(panel: Panel, history: list[dict]) -> list[str]:
    rules = []
    for index in range(1, len(history)):
        if history[index].get("method") != history[index - 1].get("method"):
            x = (panel.px(index) + panel.px(index - 1)) / 2
            rules.append(
                f'<line x1="{x}" y1="{panel.py(panel.top)}" x2="{x}" y2="{panel.py(0)}" '
                f'class="method"><title>the method changed here (issue #18)</title></line>'
            )
    return rules


def lines(panel: Panel, history: list[dict], name: str) -> list[str]:
    parts = []
    for backend, colour in COLOURS.items():
        for segment in segments(history, series(history, name, backend)):
            coordinates = " ".join(f"{panel.px(i)},{panel.py(v)}" for i, v in segment)
            parts.append(f'<polyline points="{coordinates}" stroke="{colour}" class="line"/>')
            for index, value in segment:
                tip = f"{LABELS[backend]}: {tick_label(value)}, {describe(history[index])}"
                parts.append(
                    f'<circle cx="{panel.px(index)}" cy="{panel.py(value)}" r="2.5" '
                    f'fill="{colour}"><title>{escape(tip)}</title></circle>'
                )
    return parts


def panel_svg(history: list[dict], name: str, position: int) -> list[str]:
    path, title = KEY_FIGURES[name]
    target = target_of(path)
    values = [v for b in COLOURS for _, v in series(history, name, b)]
    top = max([*values, target or 0, 0]) * 1.15
    x = MARGIN + (position % COLUMNS) * PANEL_W
    y = HEADER_H + (position // COLUMNS) * PANEL_H
    panel = Panel(x, y, len(history), top)
    parts = axes(panel, title, history) + method_rules(panel, history)
    if target is not None:
        left = panel.x + PLOT["left"]
        right = left + panel.width
        parts.append(
            f'<line x1="{left}" y1="{panel.py(target)}" x2="{right}" y2="{panel.py(target)}" '
            f'class="target"><title>target: {tick_label(target)}</title></line>'
        )
    return parts + lines(panel, history, name)


STYLE = """<style>
text { font-family: sans-serif; fill: #222; }
.heading { font-size: 15px; font-weight: bold; }
.note { font-size: 11px; fill: #555; }
.title { font-size: 12px; }
.tick { font-size: 10px; fill: #555; }
.axis { stroke: #888; stroke-width: 1; }
.target { stroke: #c00; stroke-width: 1; stroke-dasharray: 4 3; }
.method { stroke: #999; stroke-width: 1; stroke-dasharray: 1 3; }
.line { fill: none; stroke-width: 1.5; }
</style>"""


def legend(x: float, y: float) -> list[str]:
    parts = []
    for offset, (backend, colour) in enumerate(COLOURS.items()):
        left = x + offset * 210
        parts.append(
            f'<line x1="{left}" y1="{y - 4}" x2="{left + 18}" y2="{y - 4}" stroke="{colour}" '
            f'class="line"/><text x="{left + 24}" y="{y}" class="note">{LABELS[backend]}</text>'
        )
    parts.append(
        f'<line x1="{x + 420}" y1="{y - 4}" x2="{x + 438}" y2="{y - 4}" class="target"/>'
        f'<text x="{x + 444}" y="{y}" class="note">target (Postgres + Redis)</text>'
    )
    return parts


def svg(history: list[dict]) -> str:
    """The chart of ``history`` (results.json's), as an SVG document."""
    names = list(KEY_FIGURES)
    rows = -(-len(names) // COLUMNS)
    width, height = 2 * MARGIN + COLUMNS * PANEL_W, HEADER_H + rows * PANEL_H + 10
    heading = f"Brisa's benchmarks across {len(history)} full runs of make bench"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        STYLE,
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="20" class="heading">{escape(heading)}</text>',
        *legend(MARGIN, 40),
    ]
    for position, name in enumerate(names):
        parts += panel_svg(history, name, position)
    return "\n".join([*parts, "</svg>"]) + "\n"


def draw(history: list[dict], path: Path = CHART) -> None:
    path.write_text(svg(history))


def main() -> int:
    results = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    chart = Path(sys.argv[2]) if len(sys.argv) > 2 else CHART
    history = json.loads(results.read_text()).get("history") or []
    if not history:
        print(f"{results} has no history: run python -m tests.bench.versions first")
        return 1
    draw(history, chart)
    print(f"{chart}: {len(history)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
