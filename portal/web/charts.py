"""Plotly figures from protected tables (pure: no Streamlit).

Suppressed values are null and are not drawn (a gap, not a zero). Colours follow the
Analysis Function's accessible categorical palette; lines also differ by dash so
that colour is never the only cue. The figure carries no title: the page shows a
headline title and a statistical subtitle above it.
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
    fig.update_xaxes(type="category")


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
) -> go.Figure:
    fig = go.Figure()
    for i, (name, part) in enumerate(_groups(data, series)):
        fig.add_trace(
            go.Scatter(
                x=part[x].to_list(),
                y=part[y].to_list(),
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
    _layout(fig, x_title=x_title, y_title=y_title, percent=percent, legend=series is not None)
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
) -> go.Figure:
    fig = go.Figure()
    for i, (name, part) in enumerate(_groups(data, series)):
        cats, vals = part[x].to_list(), part[y].to_list()
        fig.add_trace(
            go.Bar(
                x=vals if horizontal else cats,
                y=cats if horizontal else vals,
                name=name or y_title,
                orientation="h" if horizontal else "v",
                marker={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    _layout(fig, x_title=x_title, y_title=y_title, percent=percent, legend=series is not None)
    fig.update_layout(barmode="group", hovermode="closest")
    if horizontal:
        fig.update_layout(xaxis_title=y_title, yaxis_title=x_title)
        fig.update_yaxes(type="category", autorange="reversed", rangemode="normal")
        fig.update_xaxes(type="linear", rangemode="tozero", ticksuffix="%" if percent else "")
        fig.update_layout(height=max(300, 34 * data[x].n_unique() + 80))
    if order is not None:
        axis = fig.update_yaxes if horizontal else fig.update_xaxes
        axis(categoryorder="array", categoryarray=list(order))
    return fig
