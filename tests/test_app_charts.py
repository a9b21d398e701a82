"""The portal's charts are plain plotly specs built in one step, and they are the same
charts the validating `plotly.graph_objects` builder drew (kept below, as it was, as the
oracle): same traces, same suppressed-point markers, same axes, for every combination of
series, suppression flags, percentages, orientation and category order. Every spec passes
plotly's own validator, and Streamlit is handed it without a second validation."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import date

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import plotly.tools
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.web import charts, plot

# --- the oracle: the builder through plotly.graph_objects, as it was before specs -----------
# Margins and height are the one change since: the oracle left them to plotly's automargin,
# the specs size them from their labels (`same_chart` compares everything else).

PALETTE = charts.PALETTE
DASHES = charts.DASHES
SUPPRESSED_NAME = charts.SUPPRESSED_NAME
SUPPRESSED_COLOUR = charts.SUPPRESSED_COLOUR


def _old_layout(fig: go.Figure, *, x_title: str, y_title: str, percent: bool, legend: bool) -> None:
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


def _old_flags(data: pl.DataFrame, flag: str | None) -> list[bool]:
    if flag is None or flag not in data.columns:
        return [False] * data.height
    return [bool(v) for v in data[flag].fill_null(False).to_list()]


def _old_suppressed_trace(
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


def _old_groups(data: pl.DataFrame, series: str | None) -> list[tuple[str | None, pl.DataFrame]]:
    if series is None:
        return [(None, data)]
    names = data[series].unique(maintain_order=True).to_list()
    return [(str(n), data.filter(pl.col(series) == n)) for n in names]


def validated_line_figure(
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
    for i, (name, part) in enumerate(_old_groups(data, series)):
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
        for xv, hidden in zip(xs, _old_flags(part, flag), strict=True):
            if hidden:
                marks[0].append(xv)
                marks[1].append(0)
                marks[2].append(f"{name + ', ' if name else ''}{xv}: c (suppressed)")
    if marks[0]:
        fig.add_trace(_old_suppressed_trace(*marks))
    legend = series is not None or bool(marks[0])
    _old_layout(fig, x_title=x_title, y_title=y_title, percent=percent, legend=legend)
    return fig


def validated_bar_figure(
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
    for i, (name, part) in enumerate(_old_groups(data, series)):
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
        for cat, hidden in zip(cats, _old_flags(part, flag), strict=True):
            if hidden:
                marks[0].append(cat)
                marks[1].append(0)
                marks[2].append(f"{name + ', ' if name else ''}{cat}: c (suppressed)")
    if marks[0]:
        fig.add_trace(_old_suppressed_trace(*marks, horizontal=horizontal))
    legend = series is not None or bool(marks[0])
    _old_layout(fig, x_title=x_title, y_title=y_title, percent=percent, legend=legend)
    fig.update_layout(barmode="group", hovermode="closest")
    if horizontal:
        fig.update_layout(xaxis_title=y_title, yaxis_title=x_title)
        # The categories carry no "%" (a ward is not a percentage: "Brackenford%").
        fig.update_yaxes(type="category", autorange="reversed", rangemode="normal", ticksuffix="")
        fig.update_xaxes(type="linear", rangemode="tozero", ticksuffix="%" if percent else "")
        if percent:
            fig.update_xaxes(autorangeoptions={"maxallowed": 100})
            fig.update_yaxes(autorangeoptions={"maxallowed": None})
        fig.update_layout(height=max(300, 34 * data[x].n_unique() + 80))
    if order is not None:
        axis = fig.update_yaxes if horizontal else fig.update_xaxes
        axis(categoryorder="array", categoryarray=list(order))
    return fig


# --- the tests --------------------------------------------------------------------------------


def _frame(values: Sequence[float | None], series: Sequence[str] | None = None) -> pl.DataFrame:
    labels = ["2023/24", "2024/25", "2025/26"]
    n = len(values)
    data: dict[str, list[object]] = {
        "period": [labels[i % 3] for i in range(n)],
        "value": list(values),
        "_c": [v is None for v in values],
    }
    if series is not None:
        data["group"] = list(series)
    return pl.DataFrame(data, schema_overrides={"value": pl.Float64})


FRAMES = {
    "one series, one suppressed": _frame([12.0, None, 30.0]),
    "two series, true zero and suppressed": _frame(
        [1.5, None, 0.0, 40.0, 55.5, None], ["North", "North", "North", "South", "South", "South"]
    ),
    "nothing suppressed": _frame([10.0, 20.0, 30.0]),
    "all suppressed": _frame([None, None, None]),
}
OPTIONS = list(itertools.product([False, True], [None, "_c"], ["", "Percentage"]))


def same_chart(spec: charts.Spec, oracle: go.Figure) -> bool:
    """The same chart, but for the margins and height the spec sizes itself, which are
    never smaller than the oracle's, and the template, which keeps only what the chart can
    use: its trace types' defaults and the layout of cartesian x and y axes. The chart
    draws no other trace type and has no map, polar, 3D or ternary subplot and no colour
    axis, so nothing the spec's template leaves out could change it."""
    drawn = oracle.to_dict()
    ours, theirs = dict(spec["layout"]), dict(drawn["layout"])
    margin, height = ours.pop("margin"), ours.pop("height")
    old_margin, old_height = theirs.pop("margin"), theirs.pop("height")
    assert all(margin[k] >= old_margin[k] for k in "lrtb"), (margin, old_margin)
    assert height >= old_height
    template, full = ours.pop("template"), theirs.pop("template")
    assert template == {
        "data": {k: full["data"][k] for k in charts.TEMPLATE_TRACES},
        "layout": {k: full["layout"][k] for k in charts.TEMPLATE_LAYOUT},
    }
    assert {t["type"] for t in spec["data"]} <= set(charts.TEMPLATE_TRACES)
    left_out = set(full["layout"]) - set(charts.TEMPLATE_LAYOUT)
    assert not left_out & set(ours), left_out & set(ours)
    assert not {k.rstrip("0123456789") for k in ours} & {"geo", "polar", "scene", "ternary"}
    return {**spec, "layout": ours} == {**drawn, "layout": theirs}


@pytest.mark.parametrize("name", FRAMES)
@pytest.mark.parametrize(("percent", "flag", "y_title"), OPTIONS)
def test_line_specs_are_the_charts_the_validating_builder_drew(name, percent, flag, y_title):
    frame = FRAMES[name]
    series = "group" if "group" in frame.columns else None
    kw = {"series": series, "x_title": "Financial year", "y_title": y_title, "percent": percent}
    spec = charts.line_figure(frame, "period", "value", flag=flag, **kw)
    assert same_chart(spec, validated_line_figure(frame, "period", "value", flag=flag, **kw))
    go.Figure(spec)  # plotly's validator accepts every property


@pytest.mark.parametrize("name", FRAMES)
@pytest.mark.parametrize(("percent", "flag", "y_title"), OPTIONS)
@pytest.mark.parametrize("horizontal", [False, True])
@pytest.mark.parametrize("order", [None, ["2025/26", "2023/24", "2024/25"]])
def test_bar_specs_are_the_charts_the_validating_builder_drew(
    name, percent, flag, y_title, horizontal, order
):
    frame = FRAMES[name]
    series = "group" if "group" in frame.columns else None
    kw = {
        "series": series,
        "x_title": "Financial year",
        "y_title": y_title,
        "percent": percent,
        "horizontal": horizontal,
        "order": order,
        "flag": flag,
    }
    spec = charts.bar_figure(frame, "period", "value", **kw)
    assert same_chart(spec, validated_bar_figure(frame, "period", "value", **kw))
    go.Figure(spec)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["X", "Y", "Z"]),
            st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
    st.booleans(),
)
def test_any_table_gives_the_same_chart_either_way(rows, horizontal, percent):
    frame = pl.DataFrame(
        {
            "cat": [r[0] for r in rows],
            "grp": [r[1] for r in rows],
            "v": [r[2] for r in rows],
            "_c": [r[2] is None for r in rows],
        },
        schema={"cat": pl.String, "grp": pl.String, "v": pl.Float64, "_c": pl.Boolean},
    )
    kw = {"series": "grp", "percent": percent, "flag": "_c", "y_title": "Number"}
    assert same_chart(
        charts.line_figure(frame, "cat", "v", **kw), validated_line_figure(frame, "cat", "v", **kw)
    )
    assert same_chart(
        charts.bar_figure(frame, "cat", "v", horizontal=horizontal, **kw),
        validated_bar_figure(frame, "cat", "v", horizontal=horizontal, **kw),
    )


def test_the_validator_would_catch_a_wrong_property():
    """The check above means something: plotly refuses a spec with a misspelt property."""
    spec = charts.line_figure(FRAMES["nothing suppressed"], "period", "value")
    spec["data"][0]["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        go.Figure(spec)


def test_the_chart_component_gets_the_spec_as_it_is_and_draws_the_same_json():
    """What portal/web/plot.py hands plotly.js is the page's spec, encoded by plotly's own
    encoder (dates included), plus only plotly's default height when the spec has none."""
    spec = charts.bar_figure(FRAMES["one series, one suppressed"], "period", "value", flag="_c")
    payload = plot.payload(spec, "Bar chart of the value by period.")
    assert set(payload) == {"figure", "config", "alt"}
    assert payload["alt"] == "Bar chart of the value by period."
    drawn = json.loads(payload["figure"])
    expected = json.loads(pio.to_json(spec, validate=False))
    if "height" not in spec["layout"]:
        expected["layout"]["height"] = plot.DEFAULT_HEIGHT
    assert drawn == expected
    assert pio.from_json(payload["figure"]).to_dict()["data"] == go.Figure(spec).to_dict()["data"]
    assert json.loads(payload["config"])["displaylogo"] is False
    dated = {"data": [{"type": "scatter", "x": [date(2025, 4, 1)], "y": [3]}], "layout": {}}
    assert json.loads(plot.payload(dated, "x")["figure"])["data"][0]["x"] == ["2025-04-01"]
    assert json.loads(plot.payload({**dated, "layout": {"height": 300}}, "x")["figure"])[
        "layout"
    ] == {"height": 300}


def test_plotly_js_is_served_from_the_installed_package():
    """The script the charts load is plotly's own copy, at an address naming its version."""
    assert plot.PLOTLY_JS.is_file() and plot.PLOTLY_JS.stat().st_size > 1_000_000
    assert f"/portal-assets/plotly-{plotly.__version__}.min.js" == plot.PLOTLY_URL
    assert "__PLOTLY_URL__" not in plot._script() and plot.PLOTLY_URL in plot._script()


def test_each_figure_gets_its_own_template_copy():
    a = charts.line_figure(FRAMES["nothing suppressed"], "period", "value")
    b = charts.line_figure(FRAMES["nothing suppressed"], "period", "value")
    a["layout"]["template"]["layout"]["font"] = {"size": 99}
    assert b["layout"]["template"] != a["layout"]["template"]


@pytest.mark.parametrize("horizontal", [False, True])
def test_only_the_value_axis_of_a_percentage_bar_says_percent(horizontal):
    # Issue 13 saw ward names drawn as "Brackenford%": the suffix sat on the category axis.
    frame = pl.DataFrame({"ward": ["Brackenford", "Ashby"], "value": [40.0, 55.5]})
    spec = charts.bar_figure(frame, "ward", "value", series=None, x_title="Ward",
                             y_title="Share", percent=True, horizontal=horizontal)  # fmt: skip
    value_axis, category_axis = ("xaxis", "yaxis") if horizontal else ("yaxis", "xaxis")
    assert spec["layout"][value_axis]["ticksuffix"] == "%"
    assert spec["layout"][category_axis].get("ticksuffix", "") == ""
    assert spec["layout"][category_axis]["type"] == "category"


def test_margins_grow_with_the_labels_they_hold():
    short = pl.DataFrame({"ward": ["Ash", "Elm"], "value": [40.0, 55.5]})
    long = pl.DataFrame({"ward": ["Brackenford and Upper Ashby", "Elm"], "value": [40.0, 9e5]})
    narrow = charts.bar_figure(short, "ward", "value", horizontal=True)["layout"]["margin"]
    wide = charts.bar_figure(long, "ward", "value", horizontal=True)["layout"]["margin"]
    assert wide["l"] - narrow["l"] >= charts.CHAR_PX * (len("Brackenford and Upper Ashby") - 3)
    # a value axis reaching 1,000,000 needs more room than one reaching 100
    low = charts.line_figure(short, "ward", "value")["layout"]["margin"]
    high = charts.line_figure(long, "ward", "value")["layout"]["margin"]
    assert high["l"] - low["l"] >= charts.CHAR_PX * (len("1,125,000") - 3)


def test_a_crowded_category_axis_has_room_for_upright_labels():
    months = [f"2024-{m:02d}" for m in range(1, 13)] + [f"2025-{m:02d}" for m in range(1, 13)]
    few = pl.DataFrame({"month": months[:3], "value": [1.0, 2.0, 3.0]})
    many = pl.DataFrame({"month": months * 3, "value": [1.0] * 72})
    assert charts.line_figure(few, "month", "value")["layout"]["margin"]["b"] < 70
    bottom = charts.line_figure(many, "month", "value")["layout"]["margin"]["b"]
    assert bottom >= charts.TITLE_PX + charts.CHAR_PX * len("2024-01")


def test_a_legend_of_several_rows_makes_the_figure_taller_not_the_plot_shorter():
    def lines(groups: int) -> charts.Spec:
        names = [f"Locality {i}" for i in range(groups)]
        frame = pl.DataFrame(
            {
                "q": ["Q1", "Q2"] * groups,
                "g": [n for n in names for _ in "12"],
                "v": [1.0] * 2 * groups,
            }
        )
        return charts.line_figure(frame, "q", "v", series="g")["layout"]

    one, many = lines(2), lines(30)
    assert many["margin"]["t"] > one["margin"]["t"]
    plot = [lay["height"] - lay["margin"]["t"] - lay["margin"]["b"] for lay in (one, many)]
    assert plot[1] >= plot[0] - 10, "the plot keeps its height"
