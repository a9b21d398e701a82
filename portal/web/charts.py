"""Plotly figures from protected tables (pure: no Streamlit).

A suppressed value is never a gap that could pass for missing data nor a point that could
pass for zero: the line breaks there and a grey cross sits on the axis, with a legend entry
("c: suppressed"), so a reader sees at once which figures are hidden and why. A true zero
is drawn as a point at zero. Colours follow the Analysis Function's accessible categorical
palette; lines also differ by dash so that colour is never the only cue. A percentage axis
never runs past 100%. The figure carries no title: the page shows a headline title and a
statistical subtitle above it.

Figures are plain plotly specs (dicts), written in the form plotly's own `Figure.to_dict()`
gives, in one step: building them through `plotly.graph_objects` validated every property
of every trace and cost 100-200 ms a chart, most of a filter change's script time.
`tests/test_app_charts.py` checks each spec against plotly's validator and against the
figures the validating builder drew, so the charts are the same. The chart component
(`portal/web/plot.py`) draws a spec as it is, without a second validation.

Margins are sized here, from the labels, rather than left to plotly. With the template's
`automargin`, a figure drawn with margins too small for its tick labels, axis titles or
legend is measured and then drawn again from scratch: that second pass was half of the
browser's drawing time on a filter change. `_margins` estimates what the labels need
(generously: spare room costs a few pixels, too little costs the second pass), and
`automargin` stays on, so a label the estimate under-sized still fits: it only costs the
redraw, never a clipped label.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

Spec = dict[str, Any]
# Analysis Function categorical palette (dark blue, turquoise, dark pink, orange,
# dark grey, light purple), then darker tints for longer series lists.
PALETTE = (
    "#12436D",
    "#28A197",
    "#801650",
    "#F46A25",
    "#3D3D3D",
    "#A285D1",
    "#0F7A6E",
    "#B03A00",
    "#5A2A82",
    "#6B6B6B",
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SUPPRESSED_NAME = "c: suppressed (too few to publish)"
SUPPRESSED_COLOUR = "#3D3D3D"


# What of the plotly_white template a portal chart can use: its two trace types and the
# layout of one pair of cartesian axes. The rest (maps, polar, 3D, ternary and 20 other
# trace types) changes nothing drawn here, but was 60% of every chart's spec: sent to the
# browser and read by plotly.js on every filter change.
TEMPLATE_TRACES = ("bar", "scatter")
TEMPLATE_LAYOUT = (
    "annotationdefaults",
    "autotypenumbers",
    "colorway",
    "font",
    "hoverlabel",
    "hovermode",
    "paper_bgcolor",
    "plot_bgcolor",
    "shapedefaults",
    "title",
    "xaxis",
    "yaxis",
)


@functools.cache
def _template_json() -> str:
    """The parts of the plotly_white template a portal chart uses (TEMPLATE_TRACES,
    TEMPLATE_LAYOUT), as a figure spec carries it (plotly.js needs the object, not its
    name), built once per process. Kept as JSON text: loading a fresh copy for each figure
    is ten times quicker than deep-copying the nested dict."""
    template = go.Figure(layout={"template": "plotly_white"}).layout.template.to_plotly_json()
    return json.dumps(
        {
            "data": {k: template["data"][k] for k in TEMPLATE_TRACES},
            "layout": {k: template["layout"][k] for k in TEMPLATE_LAYOUT},
        }
    )


# Layout estimates at the 14 px font: a character's width at most (digits and most letters
# are narrower), a line of text, the room an axis title with its padding takes, a legend
# entry's symbol and gap, and the plot width assumed when a legend or a category axis is
# laid out (a narrow window wraps or turns labels more: automargin covers that case).
# Calibrated against what plotly.js settles on under Streamlit's chart theme (a portal
# chart is about 940 px wide in a 1,400 px window) and plain plotly.js
# (tests/test_browser_charts.py).
CHAR_PX = 8.5
LINE_PX = 21
TITLE_PX = 30
ENTRY_PX = 46
ASSUMED_WIDTH_PX = 950
ONE_ROW_LEGEND_PX = 32


def _longest(labels: Sequence[object]) -> int:
    return max((len(str(v)) for v in labels), default=0)


def _value_chars(values: Sequence[object], percent: bool) -> int:
    """Characters of the widest tick label on a value axis: the top tick can round up past
    the largest value (95 -> 100), and thousands are separated (12,000)."""
    top = max((abs(float(v)) for v in values if isinstance(v, int | float)), default=0.0)
    if percent:
        return 4  # "100%" at most: a percentage axis stops at 100
    return max(3, len(f"{math.ceil(top * 1.25):,}"))


def _legend_px(names: Sequence[str]) -> int:
    """The height of a horizontal legend of `names` (0: none). Its entries are laid out in
    columns as wide as the widest one."""
    if not names:
        return 0
    entry = ENTRY_PX + CHAR_PX * _longest(names)
    per_row = max(1, int(ASSUMED_WIDTH_PX // entry))
    return ONE_ROW_LEGEND_PX + LINE_PX * (math.ceil(len(names) / per_row) - 1)


def _margins(
    *,
    categories: Sequence[object],
    values: Sequence[object],
    legend_names: Sequence[str],
    horizontal: bool,
    percent: bool,
    height: int,
) -> Spec:
    """Room for the tick labels, axis titles and the legend above the plot."""
    value_px = CHAR_PX * _value_chars(values, percent)
    label_px = CHAR_PX * _longest(categories)
    crowded = False
    bottom: float
    if horizontal:
        left, bottom = TITLE_PX + label_px + 12, TITLE_PX + LINE_PX + 18
    else:
        left = TITLE_PX + value_px + 20
        crowded = len(set(map(str, categories))) * (label_px + 12) > ASSUMED_WIDTH_PX
        # Crowded category labels are turned (up to upright): room for them standing.
        bottom = TITLE_PX + (16 + label_px if crowded else 18 + LINE_PX)
    legend = _legend_px(legend_names)
    # The legend sits just above the plot (2% of the height up); with no legend, the top
    # tick label still reaches above the plot by half a line.
    top = legend + 0.02 * height + 14 if legend else 20
    # A turned label at the right end reaches past the plot.
    right = 32 if crowded else 16
    return {
        "l": math.ceil(left),
        "r": right,
        "t": math.ceil(top),
        "b": math.ceil(bottom),
    }


def _fit(
    layout: Spec,
    data: pl.DataFrame,
    x: str,
    y: str,
    traces: Sequence[Spec],
    *,
    legend: bool,
    horizontal: bool,
    percent: bool,
) -> None:
    """Margins for the figure's labels; a legend of more than one row makes the figure
    taller rather than the plot shorter."""
    names = [str(t["name"]) for t in traces if t.get("showlegend", True)] if legend else []
    layout["height"] += max(0, _legend_px(names) - ONE_ROW_LEGEND_PX)
    layout["margin"] = _margins(
        categories=data[x].to_list(),
        values=data[y].to_list(),
        legend_names=names,
        horizontal=horizontal,
        percent=percent,
        height=layout["height"],
    )


def _layout(*, x_title: str, y_title: str, percent: bool, legend: bool) -> Spec:
    yaxis: Spec = {
        "title": {"text": y_title},
        "rangemode": "tozero",
        "ticksuffix": "%" if percent else "",
        "separatethousands": True,
    }
    if percent:
        yaxis["autorangeoptions"] = {"maxallowed": 100}
    return {
        "template": json.loads(_template_json()),
        "margin": {"l": 8, "r": 8, "t": 36 if legend else 8, "b": 8},
        "font": {"size": 14},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "title": {}},
        "height": 380,
        "hovermode": "x unified",
        "showlegend": legend,
        "xaxis": {"title": {"text": x_title}, "type": "category"},
        "yaxis": yaxis,
    }


def _flags(data: pl.DataFrame, flag: str | None) -> list[bool]:
    if flag is None or flag not in data.columns:
        return [False] * data.height
    return [bool(v) for v in data[flag].fill_null(False).to_list()]


def _groups(
    data: pl.DataFrame, x: str, y: str, series: str | None, flag: str | None
) -> list[tuple[str | None, list[Any], list[Any], list[bool]]]:
    """(series name, xs, ys, suppressed flags) per series, in order of first appearance.
    Grouped in Python: a chart has at most a few hundred points, where a polars filter per
    series cost more than the whole figure."""
    xs, ys, flags = data[x].to_list(), data[y].to_list(), _flags(data, flag)
    if series is None:
        return [(None, xs, ys, flags)]
    parts: dict[Any, tuple[list[Any], list[Any], list[bool]]] = {}
    for key, xv, yv, off in zip(data[series].to_list(), xs, ys, flags, strict=True):
        part = parts.setdefault(key, ([], [], []))
        part[0].append(xv)
        part[1].append(yv)
        part[2].append(off)
    return [(str(key), *part) for key, part in parts.items()]


def _suppressed_trace(
    xs: list[object], ys: list[object], labels: list[str], *, horizontal: bool = False
) -> Spec:
    """Crosses on the axis where a figure is suppressed, one legend entry for all."""
    trace: Spec = {
        "cliponaxis": False,
        "hoverinfo": "text",
        "hovertext": labels,
        "marker": {"color": SUPPRESSED_COLOUR, "line": {"color": SUPPRESSED_COLOUR, "width": 2},
                   "size": 11, "symbol": "x-thin-open"},
        "mode": "markers+text" if horizontal else "markers",
        "name": SUPPRESSED_NAME,
        "showlegend": True,
    }  # fmt: skip
    if horizontal:
        trace["text"] = ["c"] * len(xs)
    trace.update(
        textposition="middle right",
        x=ys if horizontal else xs,
        y=xs if horizontal else ys,
        type="scatter",
    )
    return trace


def _marks(
    marks: tuple[list[object], list[object], list[str]],
    name: str | None,
    xs: list[object],
    hidden: list[bool],
) -> None:
    for xv, off in zip(xs, hidden, strict=True):
        if off:
            marks[0].append(xv)
            marks[1].append(0)
            marks[2].append(f"{name + ', ' if name else ''}{xv}: c (suppressed)")


def line_figure(
    data: pl.DataFrame,
    x: str,
    y: str,
    *,
    series: str | None = None,
    x_title: str = "",
    y_title: str = "",
    percent: bool = False,
    flag: str | None = None,
) -> Spec:
    """One line per series; `flag` names a boolean column marking suppressed rows."""
    traces: list[Spec] = []
    marks: tuple[list[object], list[object], list[str]] = ([], [], [])
    for i, (name, xs, ys, hidden) in enumerate(_groups(data, x, y, series, flag)):
        traces.append(
            {
                "connectgaps": False,
                "line": {
                    "color": PALETTE[i % len(PALETTE)],
                    "dash": DASHES[i % len(DASHES)],
                    "width": 3,
                },
                "marker": {"size": 6},
                "mode": "lines+markers",
                "name": name or y_title,
                "x": xs,
                "y": ys,
                "type": "scatter",
            }
        )
        _marks(marks, name, xs, hidden)
    if marks[0]:
        traces.append(_suppressed_trace(*marks))
    legend = series is not None or bool(marks[0])
    layout = _layout(x_title=x_title, y_title=y_title, percent=percent, legend=legend)
    _fit(layout, data, x, y, traces, legend=legend, horizontal=False, percent=percent)
    return {"data": traces, "layout": layout}


def bar_figure(
    data: pl.DataFrame,
    x: str,
    y: str,
    *,
    series: str | None = None,
    x_title: str = "",
    y_title: str = "",
    percent: bool = False,
    horizontal: bool = False,
    order: Sequence[str] | None = None,
    flag: str | None = None,
) -> Spec:
    """Bars per category (grouped by series); `flag` names a boolean column marking
    suppressed rows, drawn as a "c" cross at zero."""
    traces: list[Spec] = []
    marks: tuple[list[object], list[object], list[str]] = ([], [], [])
    for i, (name, cats, vals, hidden) in enumerate(_groups(data, x, y, series, flag)):
        traces.append(
            {
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "name": name or y_title,
                "orientation": "h" if horizontal else "v",
                "showlegend": series is not None,
                "x": vals if horizontal else cats,
                "y": cats if horizontal else vals,
                "type": "bar",
            }
        )
        _marks(marks, name, cats, hidden)
    if marks[0]:
        traces.append(_suppressed_trace(*marks, horizontal=horizontal))
    legend = series is not None or bool(marks[0])
    layout = _layout(x_title=x_title, y_title=y_title, percent=percent, legend=legend)
    layout.update(barmode="group", hovermode="closest")
    if horizontal:
        # The value axis is x, the categories y (what the page asked for, the other way).
        layout["xaxis"] = {
            "title": {"text": y_title},
            "type": "linear",
            "rangemode": "tozero",
            "ticksuffix": "%" if percent else "",
        }
        yaxis = layout["yaxis"]
        yaxis["title"] = {"text": x_title}
        yaxis["rangemode"] = "normal"
        # The categories are on y now: they carry no "%" (a ward is not a percentage).
        yaxis["ticksuffix"] = ""
        if percent:
            layout["xaxis"]["autorangeoptions"] = {"maxallowed": 100}
            yaxis["autorangeoptions"] = {}
        yaxis.update(type="category", autorange="reversed")
        layout["height"] = max(300, 34 * data[x].n_unique() + 80)
    _fit(layout, data, x, y, traces, legend=legend, horizontal=horizontal, percent=percent)
    if order is not None:
        axis = layout["yaxis" if horizontal else "xaxis"]
        axis.update(categoryorder="array", categoryarray=list(order))
    return {"data": traces, "layout": layout}
