"""Plotly figures from protected tables (pure: no Streamlit).

A suppressed value is never a gap that could pass for missing data nor a point that could
pass for zero: the line breaks there and a grey cross sits on the axis, with a legend entry
("c: suppressed"), so a reader sees at once which figures are hidden and why. A true zero
is drawn as a point at zero. Colours follow the Analysis Function's accessible categorical
palette; lines also differ by dash so that colour is never the only cue. A percentage axis
never runs past 100%. The figure carries no title: the page shows a headline title and a
statistical subtitle above it.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import polars as pl

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


def _layout(fig: go.Figure, *, x_title: str, y_title: str, percent: bool, legend: bool) -> None:
    fig.update_layout(
        template="plotly_white",
        margin={"l": 8, "r": 8, "t": 36 if legend else 8, "b": 8},
        height=380,
        font={"size": 14},
        hovermode="x unified",
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "title": None},
        xaxis_title=x_title,
        yaxis_title=y_title,
    )
    fig.update_yaxes(rangemode="tozero", ticksuffix="%" if percent else "", separatethousands=True)
    if percent:
        fig.update_yaxes(autorangeoptions={"maxallowed": 100})
    fig.update_xaxes(type="category")


def _flags(data: pl.DataFrame, flag: str | None) -> list[bool]:
    if flag is None or flag not in data.columns:
        return [False] * data.height
    return [bool(v) for v in data[flag].fill_null(False).to_list()]


def _suppressed_trace(
    xs: list[object], ys: list[object], labels: list[str], *, horizontal: bool = False
) -> go.Scatter:
    """Crosses on the axis where a figure is suppressed, one legend entry for all."""
    return go.Scatter(
        x=ys if horizontal else xs,
        y=xs if horizontal else ys,
        name=SUPPRESSED_NAME,
        mode="markers+text" if horizontal else "markers",
        text=["c"] * len(xs) if horizontal else None,
        textposition="middle right",
        hovertext=labels,
        hoverinfo="text",
        marker={"symbol": "x-thin-open", "size": 11, "color": SUPPRESSED_COLOUR,
                "line": {"width": 2, "color": SUPPRESSED_COLOUR}},
        cliponaxis=False,
        showlegend=True,
    )  # fmt: skip


def _groups(data: pl.DataFrame, series: str | None) -> list[tuple[str | None, pl.DataFrame]]:
    if series is None:
        return [(None, data)]
    names = data[series].unique(maintain_order=True).to_list()
    return [(str(n), data.filter(pl.col(series) == n)) for n in names]


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
) -> go.Figure:
    """One line per series; `flag` names a boolean column marking suppressed rows."""
    fig = go.Figure()
    marks: tuple[list[object], list[object], list[str]] = ([], [], [])
    for i, (name, part) in enumerate(_groups(data, series)):
        xs, ys = part[x].to_list(), part[y].to_list()
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=name or y_title,
                mode="lines+markers",
                connectgaps=False,
                line={
                    "color": PALETTE[i % len(PALETTE)],
                    "dash": DASHES[i % len(DASHES)],
                    "width": 3,
                },
                marker={"size": 6},
            )
        )
        for xv, hidden in zip(xs, _flags(part, flag), strict=True):
            if hidden:
                marks[0].append(xv)
                marks[1].append(0)
                marks[2].append(f"{name + ', ' if name else ''}{xv}: c (suppressed)")
    if marks[0]:
        fig.add_trace(_suppressed_trace(*marks))
    legend = series is not None or bool(marks[0])
    _layout(fig, x_title=x_title, y_title=y_title, percent=percent, legend=legend)
    return fig


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
) -> go.Figure:
    """Bars per category (grouped by series); `flag` names a boolean column marking
    suppressed rows, drawn as a "c" cross at zero."""
    fig = go.Figure()
    marks: tuple[list[object], list[object], list[str]] = ([], [], [])
    for i, (name, part) in enumerate(_groups(data, series)):
        cats, vals = part[x].to_list(), part[y].to_list()
        fig.add_trace(
            go.Bar(
                x=vals if horizontal else cats,
                y=cats if horizontal else vals,
                name=name or y_title,
                orientation="h" if horizontal else "v",
                marker={"color": PALETTE[i % len(PALETTE)]},
                showlegend=series is not None,
            )
        )
        for cat, hidden in zip(cats, _flags(part, flag), strict=True):
            if hidden:
                marks[0].append(cat)
                marks[1].append(0)
                marks[2].append(f"{name + ', ' if name else ''}{cat}: c (suppressed)")
    if marks[0]:
        fig.add_trace(_suppressed_trace(*marks, horizontal=horizontal))
    legend = series is not None or bool(marks[0])
    _layout(fig, x_title=x_title, y_title=y_title, percent=percent, legend=legend)
    fig.update_layout(barmode="group", hovermode="closest")
    if horizontal:
        fig.update_layout(xaxis_title=y_title, yaxis_title=x_title)
        fig.update_yaxes(type="category", autorange="reversed", rangemode="normal")
        fig.update_xaxes(type="linear", rangemode="tozero", ticksuffix="%" if percent else "")
        if percent:
            fig.update_xaxes(autorangeoptions={"maxallowed": 100})
            fig.update_yaxes(autorangeoptions={"maxallowed": None})
        fig.update_layout(height=max(300, 34 * data[x].n_unique() + 80))
    if order is not None:
        axis = fig.update_yaxes if horizontal else fig.update_xaxes
        axis(categoryorder="array", categoryarray=list(order))
    return fig
