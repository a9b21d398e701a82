"""The printable report (pure): one self-contained HTML file of the headline measures, for
leadership to print or save as PDF from the browser.

Everything is in the file: the charts are inline SVG drawn here (no plotting service, no
script, no web font, no image fetched from anywhere), the styles are inline and set up for
A4 paper. Every number comes from the protected tables the page already has, formatted as
published (symbols included); each figure carries its headline, a table of the values it
draws, its footnotes, and the report ends with the disclosure-control note.

Other parts of the portal add sections through `Section` (issue 14's comparisons with
England, region and statistical neighbours go after the headline figures; see
`portal.web.ui.REPORT_SECTIONS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Colours of the portal's charts (Analysis Function palette; see charts.py).
LINE = "#12436D"
GRID = "#D9D9D9"
TEXT = "#0B0C0C"
MUTED = "#3D3D3D"


@dataclass(frozen=True)
class Point:
    label: str  # the category or period
    value: float | None  # None: suppressed (or not applicable)
    shown: str  # the value as published ("1,234", "c", "z")


@dataclass(frozen=True)
class Figure:
    """One measure in the report."""

    title: str  # the measure
    headline: str  # the finding, one sentence
    kind: str  # "line" or "bar"
    points: tuple[Point, ...]
    value_title: str  # "Number of referrals", "Percentage", "Rate per 10,000"
    x_title: str
    percent: bool = False
    tile: tuple[str, str, str] | None = None  # (value, change, note) of its headline tile
    footnotes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A block another part of the portal adds (title and HTML body it has escaped)."""

    title: str
    html: str


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    release_line: str
    figures: tuple[Figure, ...]
    disclosure: tuple[str, ...]  # the disclosure-control note, one paragraph each
    superseded: str | None = None  # set when the release has been replaced
    sections: tuple[Section, ...] = field(default_factory=tuple)
    demo: bool = False


# --- inline SVG -----------------------------------------------------------------------------


def _nice_max(top: float, *, percent: bool) -> float:
    if top <= 0:
        return 1.0 if not percent else 10.0
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ceiling = step * math.ceil(top / step)
    return min(ceiling, 100.0) if percent else ceiling


def _ticks(ceiling: float) -> list[float]:
    return [ceiling * i / 4 for i in range(5)]


def _fmt(v: float, percent: bool) -> str:
    text = f"{v:,.0f}" if float(v).is_integer() or v >= 10 else f"{v:,.1f}"
    return text + ("%" if percent else "")


def svg_line(fig: Figure, *, width: int = 640, height: int = 240) -> str:
    """A line chart of `fig.points`: breaks and a grey cross on the axis where suppressed."""
    left, right, top, bottom = 64, 16, 20, 48
    w, h = width - left - right, height - top - bottom
    values = [p.value for p in fig.points if p.value is not None]
    ceiling = _nice_max(max(values, default=0.0), percent=fig.percent)
    n = len(fig.points)

    def x(i: int) -> float:
        return left + (w * (i + 0.5) / n if n else 0)

    def y(v: float) -> float:
        return top + h - h * (v / ceiling)

    out = [_svg_open(width, height, fig)]
    for t in _ticks(ceiling):
        out.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{MUTED}">{escape(_fmt(t, fig.percent))}</text>'
        )
    run: list[str] = []
    for i, p in enumerate(fig.points):
        if p.value is None:
            if len(run) > 1:
                out.append(_polyline(run))
            run = []
            if p.shown == "c":
                out.append(_cross(x(i), top + h))
            continue
        run.append(f"{x(i):.1f},{y(p.value):.1f}")
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5" fill="{LINE}"/>')
    if len(run) > 1:
        out.append(_polyline(run))
    step = max(1, math.ceil(n / 10))
    for i, p in enumerate(fig.points):
        if i % step == 0 or i == n - 1:
            out.append(
                f'<text x="{x(i):.1f}" y="{top + h + 16}" text-anchor="middle" font-size="11" '
                f'fill="{MUTED}">{escape(p.label)}</text>'
            )
    out.append(
        f'<text x="{left + w / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="12" '
        f'fill="{TEXT}">{escape(fig.x_title)}</text>'
    )
    out.append(_legend(fig, left, 12))
    out.append("</svg>")
    return "".join(out)


def svg_bars(fig: Figure, *, width: int = 640) -> str:
    """Horizontal bars of `fig.points`: a grey "c" at zero where suppressed."""
    left, right, top, bottom, bar = 220, 64, 20, 40, 22
    height = top + bottom + bar * len(fig.points)
    w = width - left - right
    values = [p.value for p in fig.points if p.value is not None]
    ceiling = _nice_max(max(values, default=0.0), percent=fig.percent)
    out = [_svg_open(width, height, fig)]
    for t in _ticks(ceiling):
        xt = left + w * t / ceiling
        out.append(
            f'<line x1="{xt:.1f}" x2="{xt:.1f}" y1="{top}" y2="{height - bottom}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{xt:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
            f'font-size="11" fill="{MUTED}">{escape(_fmt(t, fig.percent))}</text>'
        )
    for i, p in enumerate(fig.points):
        yc = top + bar * i + bar / 2
        out.append(
            f'<text x="{left - 8}" y="{yc + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{TEXT}">{escape(p.label)}</text>'
        )
        if p.value is None:
            out.append(
                f'<text x="{left + 6}" y="{yc + 4:.1f}" font-size="12" fill="{MUTED}">'
                f"{escape(p.shown)}</text>"
            )
            continue
        length = w * p.value / ceiling
        out.append(
            f'<rect x="{left}" y="{yc - bar * 0.35:.1f}" width="{length:.1f}" '
            f'height="{bar * 0.7:.1f}" fill="{LINE}"/>'
            f'<text x="{left + length + 4:.1f}" y="{yc + 4:.1f}" font-size="11" '
            f'fill="{TEXT}">{escape(p.shown + ("%" if fig.percent else ""))}</text>'
        )
    out.append(
        f'<text x="{left + w / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="12" '
        f'fill="{TEXT}">{escape(fig.value_title)}</text>'
    )
    out.append(_legend(fig, left, 12))
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: int, fig: Figure) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(describe(fig))}" '
        'font-family="Arial, Helvetica, sans-serif">'
        f"<title>{escape(fig.headline)}</title>"
    )


def _polyline(points: list[str]) -> str:
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2.5"/>'


def _cross(cx: float, cy: float) -> str:
    d = 5
    return (
        f'<path d="M{cx - d:.1f},{cy - d:.1f} L{cx + d:.1f},{cy + d:.1f} '
        f'M{cx - d:.1f},{cy + d:.1f} L{cx + d:.1f},{cy - d:.1f}" stroke="{MUTED}" '
        'stroke-width="2"/>'
    )


def _legend(fig: Figure, x: float, y: float) -> str:
    if not any(p.shown == "c" for p in fig.points):
        return ""
    mark = _cross(x + 5, y - 4) if fig.kind == "line" else ""
    label = "c: suppressed (too few to publish)"
    offset = 16 if fig.kind == "line" else 0
    return (
        f'{mark}<text x="{x + offset}" y="{y}" font-size="11" fill="{MUTED}">'
        f"{escape(label if fig.kind == 'line' else 'c = suppressed (too few to publish)')}"
        "</text>"
    )


def describe(fig: Figure) -> str:
    """The chart in words (its alt text)."""
    kind = "Line chart" if fig.kind == "line" else "Bar chart"
    shown = [p for p in fig.points if p.value is not None]
    text = f"{kind} of {fig.value_title.lower()} by {fig.x_title.lower()}"
    if fig.points:
        text += f", {fig.points[0].label} to {fig.points[-1].label}"
    if shown:
        hi = max(shown, key=lambda p: p.value or 0)
        lo = min(shown, key=lambda p: p.value or 0)
        unit = "%" if fig.percent else ""
        text += f"; highest {hi.shown}{unit} ({hi.label}), lowest {lo.shown}{unit} ({lo.label})"
    hidden = sum(p.shown == "c" for p in fig.points)
    if hidden:
        text += f"; {hidden} suppressed (c)"
    return text + "."


# --- the document -------------------------------------------------------------------------

_CSS = """
@page { size: A4; margin: 16mm 14mm; }
* { box-sizing: border-box; }
body { font-family: Arial, Helvetica, sans-serif; color: #0b0c0c; margin: 24px auto;
       max-width: 190mm; line-height: 1.4; font-size: 11pt; }
h1 { font-size: 20pt; margin: 0 0 4px; }
h2 { font-size: 14pt; margin: 20px 0 6px; border-top: 2px solid #12436D; padding-top: 8px; }
h3 { font-size: 12pt; margin: 14px 0 4px; }
.sub { color: #3d3d3d; margin: 0 0 4px; }
.note { background: #fff7bf; border-left: 5px solid #f46a25; padding: 6px 10px; }
.demo { background: #eef2f7; border-left: 5px solid #12436D; padding: 6px 10px; }
.tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; margin: 8px 0; }
.tile { border: 1px solid #b1b4b6; padding: 6px 8px; }
.tile .label { font-size: 9.5pt; }
.tile .value { font-size: 18pt; font-weight: bold; }
.tile .change, .tile .why { font-size: 9pt; color: #3d3d3d; }
figure { margin: 8px 0 14px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 9pt; color: #3d3d3d; }
table { border-collapse: collapse; font-size: 9.5pt; margin: 4px 0; }
th, td { border-bottom: 1px solid #b1b4b6; padding: 2px 8px; text-align: left; }
td.n { text-align: right; }
ol.notes { font-size: 9pt; color: #3d3d3d; padding-left: 20px; }
.measure { break-inside: avoid-page; }
.screen-only { color: #3d3d3d; font-size: 10pt; }
@media print { .screen-only { display: none; } body { margin: 0; max-width: none; } }
"""


def _tile_html(fig: Figure) -> str:
    if fig.tile is None:
        return ""
    value, change, why = fig.tile
    return (
        f'<div class="tile"><div class="label">{escape(fig.title)}</div>'
        f'<div class="value">{escape(value)}</div>'
        + (f'<div class="change">{escape(change)}</div>' if change else "")
        + (f'<div class="why">{escape(why)}</div>' if why else "")
        + "</div>"
    )


def _values_table(fig: Figure) -> str:
    head = f"<tr><th>{escape(fig.x_title)}</th><th>{escape(fig.value_title)}</th></tr>"
    rows = "".join(
        f'<tr><td>{escape(p.label)}</td><td class="n">{escape(p.shown)}</td></tr>'
        for p in fig.points
    )
    return f"<table>{head}{rows}</table>"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<ol class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ol>"


def render(report: Report) -> str:
    """The report as one HTML document (nothing outside it is referenced)."""
    common = set(report.figures[0].footnotes) if report.figures else set()
    for fig in report.figures[1:]:
        common &= set(fig.footnotes)
    shared = [n for n in (report.figures[0].footnotes if report.figures else ()) if n in common]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="sub">{escape(report.subtitle)}</p>',
        f'<p class="sub">{escape(report.release_line)}</p>',
        '<p class="screen-only">To keep a copy, print this page or save it as PDF from the '
        "browser's print dialogue.</p>",
    ]
    if report.superseded:
        parts.append(f'<p class="note">{escape(report.superseded)}</p>')
    if report.demo:
        parts.append(
            '<p class="demo">Demo: every figure comes from a synthetic county; no real child '
            "or family is in it.</p>"
        )
    tiles = [f for f in report.figures if f.tile is not None]
    if tiles:
        parts.append("<h2>Headline figures</h2>")
        parts.append('<div class="tiles">' + "".join(_tile_html(f) for f in tiles) + "</div>")
    for section in report.sections:
        parts.append(f"<h2>{escape(section.title)}</h2>{section.html}")
    parts.append("<h2>Trends and breakdowns</h2>")
    for fig in report.figures:
        chart = svg_line(fig) if fig.kind == "line" else svg_bars(fig)
        own = [n for n in fig.footnotes if n not in common]
        parts.append(
            f'<section class="measure"><h3>{escape(fig.headline)}</h3>'
            f"<figure>{chart}<figcaption>{escape(describe(fig))}</figcaption></figure>"
            f"{_values_table(fig)}{_notes(own)}</section>"
        )
    parts.append("<h2>Notes that apply to every figure</h2>")
    parts.append(_notes(shared))
    parts.append("<h2>Disclosure control</h2>")
    parts.extend(f"<p>{escape(p)}</p>" for p in report.disclosure)
    parts.append("</body></html>")
    return "\n".join(parts)
