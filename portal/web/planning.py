"""The comparisons and Supporting Families claims pages' data and figures.

The documents are built by the release service (`portal.service.planning`) from protected
tables; this module fetches them (cached per role and release, like every table) and turns
them into the frames and charts the pages draw. Nothing here computes a statistic: ranks,
bands, averages and progress all come from the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from portal.web import data

COMPARATOR_COLOURS = {
    "ours": "#12436D",  # the council: the GSS dark blue, drawn heavier
    "region": "#28A197",
    "neighbours": "#801650",
    "england": "#F46A25",
}
BAND_MEANING = "A is the best quarter of authorities, D the worst (by the measure's polarity)"
POLARITY_TITLES = {"High": "Higher is better", "Low": "Lower is better", "-": "Neither"}


# --- the documents ---------------------------------------------------------------------------


@st.cache_data(show_spinner=False, ttl=60)
def comparisons(role_key: str, _token: str, release_id: str) -> dict[str, Any]:
    """The comparisons document of one release (GET /v1/comparisons)."""
    doc = data._ok(
        data._call("GET", "/v1/comparisons", token=_token, params={"release": release_id})
    )
    return dict(doc)


@st.cache_data(show_spinner=False, ttl=60)
def sf_claims(role_key: str, _token: str, release_id: str) -> dict[str, Any]:
    """The Supporting Families claims document of one release."""
    doc = data._ok(
        data._call(
            "GET", "/v1/supporting-families/claims", token=_token, params={"release": release_id}
        )
    )
    return dict(doc)


@st.cache_data(show_spinner=False, ttl=60)
def sf_return(role_key: str, _token: str, release_id: str, quarter: str) -> dict[str, Any]:
    """The quarterly progress return for one quarter, as the service fills it."""
    params = {"release": release_id, "quarter": quarter}
    doc = data._ok(data._call("GET", "/v1/supporting-families/return", token=_token, params=params))
    return dict(doc)


# --- comparisons -----------------------------------------------------------------------------


def _shown(fig: Mapping[str, Any] | None) -> str:
    return "" if fig is None else str(fig["shown"])


def summary_frame(doc: Mapping[str, Any]) -> pl.DataFrame:
    """One row per compared measure: the latest year with our figure beside the comparators,
    the change on last year, rank and quartile band."""
    name = doc["authority"]["name"]
    rows = []
    for c in doc["compared"]:
        latest = c["latest"]
        year = latest["period"] if latest else None
        point = next((s for s in c["series"] if s["period"] == year), None) if year else None
        if point is None and c["series"]:
            point = c["series"][-1]
            year = point["period"]
        change = ""
        if latest and latest["change"] is not None:
            change = f"{latest['arrow']} {latest['change']:+.{c['decimals']}f}"
            if latest["direction"]:
                change += f" ({latest['direction']})"
        rows.append(
            {
                "Measure": f"{c['title']} ({c['unit']})",
                "Year": year or "",
                name: _shown(point["ours"]) if point else "",
                "Region": _shown(point["region"]) if point else "",
                "Neighbours (mean)": (
                    "" if not point or point["neighbours"] is None else str(point["neighbours"])
                ),
                "England": _shown(point["england"]) if point else "",
                "Change on last year": change,
                "Rank": (
                    f"{latest['rank']} of {latest['of']}" if latest and latest["rank"] else "-"
                ),
                "Quartile band": (latest["band"] or "-") if latest else "-",
                "Polarity": POLARITY_TITLES.get(c["polarity"], c["polarity"]),
            }
        )
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]} if rows else None)


def series_frame(comparison: Mapping[str, Any], authority: str) -> pl.DataFrame:
    """The comparison's years as a table: our figure as published (a symbol where
    suppressed) beside each comparator."""
    rows = [
        {
            "Financial year": s["period"],
            authority: _shown(s["ours"]),
            "Region": _shown(s["region"]),
            "Statistical neighbours (mean)": ""
            if s["neighbours"] is None
            else str(s["neighbours"]),
            "England": _shown(s["england"]),
            f"{authority} in the comparator file": _shown(s["published_for_us"]),
        }
        for s in comparison["series"]
    ]
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]} if rows else None)


def trend_figure(comparison: Mapping[str, Any], authority: str) -> go.Figure:
    """Our protected figure and the comparators over the years (a gap where ours is
    suppressed: a symbol is not plotted as a number)."""
    years = [s["period"] for s in comparison["series"]]

    def values(pick: str) -> list[float | None]:
        out: list[float | None] = []
        for s in comparison["series"]:
            v = s[pick]
            out.append(v if isinstance(v, int | float) or v is None else v.get("value"))
        return out

    fig = go.Figure()
    lines = (
        ("ours", authority, 4),
        ("region", "Region", 2),
        ("neighbours", "Statistical neighbours (mean)", 2),
        ("england", "England", 2),
    )
    for pick, label, width in lines:
        fig.add_trace(
            go.Scatter(
                x=years,
                y=values(pick),
                name=label,
                mode="lines+markers",
                line={"color": COMPARATOR_COLOURS[pick], "width": width},
                connectgaps=False,
            )
        )
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis_title=comparison["unit"],
        xaxis_title="Financial year",
        legend={"orientation": "h", "y": -0.25},
        hovermode="x unified",
    )
    return fig


def describe_trend(comparison: Mapping[str, Any], authority: str) -> str:
    """Alternative text for the trend chart: what it shows and the latest figures."""
    latest = comparison["series"][-1] if comparison["series"] else None
    if latest is None:
        return f"Line chart of {comparison['title']}: no years to show."
    return (
        f"Line chart of {comparison['title']} ({comparison['unit']}) by financial year, "
        f"{comparison['series'][0]['period']} to {latest['period']}, for {authority}, its "
        f"region, its statistical neighbours and England. In {latest['period']}: "
        f"{authority} {_shown(latest['ours']) or 'no figure'}, region "
        f"{_shown(latest['region']) or 'no figure'}, England "
        f"{_shown(latest['england']) or 'no figure'}."
    )


def not_compared_frame(doc: Mapping[str, Any]) -> pl.DataFrame:
    rows = [
        {"Measure": n["title"], "Why it is not compared": n["reason"]}
        for n in [*doc["not_loaded"], *doc["not_compared"]]
    ]
    return pl.DataFrame(rows, schema={"Measure": pl.String, "Why it is not compared": pl.String})


def dataset_notes(doc: Mapping[str, Any]) -> list[str]:
    """What the comparator files say about themselves (their footnotes)."""
    out = []
    for d in doc["datasets"]:
        out += [f"{d['file_name']}: {note}" for note in d["footnotes"]]
    return out


# --- Supporting Families claims --------------------------------------------------------------


def periods_frame(doc: Mapping[str, Any], dim: str = "years") -> pl.DataFrame:
    """By financial year (`dim="years"`, with the target and progress against it) or by
    quarter (`"quarters"`): families worked with, due a claim review, successful family
    outcomes."""
    label = "Financial year" if dim == "years" else "Quarter"
    rows = []
    for p in doc[dim]:
        row = {
            label: p["period"] + (f" ({p['partial']})" if p.get("partial") else ""),
            "Families worked with": p["worked_with"]["shown"],
            "Families due a claim review": p["reviews"]["shown"],
            "Successful family outcomes": p["claims"]["count"]["shown"],
            "% of families reviewed": (p["claims"]["percent"] or {}).get("shown", ""),
        }
        if dim == "years":
            row["Target"] = "" if p.get("target") is None else str(p["target"])
            row["Progress against target (%)"] = p.get("progress_shown") or ""
        rows.append(row)
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]} if rows else None)


def rules_frame(doc: Mapping[str, Any], period: str, dim: str = "years") -> pl.DataFrame:
    """For one period: each claim rule, the families due a review meeting it and their
    share (the guidance's wording beside each)."""
    row = next((p for p in doc[dim] if p["period"] == period), None)
    out = []
    for rule in doc["rules"]:
        got = (row or {}).get("rules", {}).get(rule["key"]) if row else None
        out.append(
            {
                "Claim rule": rule["title"],
                "Families meeting it": "" if got is None else got["count"]["shown"],
                "% of families reviewed": "" if got is None else got["percent"]["shown"],
                "Guidance": rule["guidance"],
            }
        )
    if row:
        out.append(
            {
                "Claim rule": "Every rule (successful family outcomes)",
                "Families meeting it": row["claims"]["count"]["shown"],
                "% of families reviewed": (row["claims"]["percent"] or {}).get("shown", ""),
                "Guidance": "A family is claimed once, for its first episode meeting every rule.",
            }
        )
    return pl.DataFrame(out, schema={k: pl.String for k in out[0]} if out else None)


def outcomes_frame(doc: Mapping[str, Any], period: str) -> pl.DataFrame:
    rows = [
        {
            "Headline outcome": o["need"],
            "Needs of families reviewed": o["reviewed"]["shown"],
            "With significant and sustained progress": o["sustained"]["shown"],
            "%": o["percent"]["shown"],
            "_value": o["percent"]["value"],
        }
        for o in doc["outcomes_by_headline"]
        if o["period"] == period
    ]
    schema = {
        "Headline outcome": pl.String,
        "Needs of families reviewed": pl.String,
        "With significant and sustained progress": pl.String,
        "%": pl.String,
        "_value": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def outcomes_figure(frame: pl.DataFrame) -> go.Figure:
    """Share of needs with sustained progress by headline (suppressed shares not drawn)."""
    fig = go.Figure(
        go.Bar(
            x=frame["_value"].to_list(),
            y=frame["Headline outcome"].to_list(),
            orientation="h",
            marker_color=COMPARATOR_COLOURS["ours"],
            text=frame["%"].to_list(),
            textposition="outside",
        )
    )
    fig.update_layout(
        height=40 * max(frame.height, 3) + 60,
        margin={"l": 10, "r": 30, "t": 10, "b": 10},
        xaxis={"title": "% of needs with significant and sustained progress", "range": [0, 110]},
        yaxis={"autorange": "reversed"},
    )
    return fig


def complete_quarters(doc: Mapping[str, Any]) -> list[str]:
    """Quarters the return can be made for (ended by the data date), newest first."""
    return [q["period"] for q in doc["quarters"] if q["complete"]][::-1]


def return_frame(doc: Mapping[str, Any]) -> pl.DataFrame:
    """The return as the table to submit: its details, then one row per line (the same
    rows as `portal sf-return`)."""
    a = doc["authority"]
    details: Sequence[tuple[str, str, str]] = (
        ("H1", "Local authority", a["name"]),
        ("H2", "Local authority code", a["new_la_code"]),
        ("H3", "Quarter", doc["quarter"]),
        ("H4", "Period", f"{doc['period'][0]} to {doc['period'][1]}"),
        ("H5", "Data as at", doc["data_as_at"]),
        ("H6", "Release", doc["release_id"]),
        ("H7", "Disclosure control policy", doc["policy"]),
    )
    rows = [
        {"line": line, "section": "Return details", "description": d, "value": v}
        for line, d, v in details
    ]
    rows += [
        {
            "line": r["line"],
            "section": r["section"],
            "description": r["description"],
            "value": r["value"],
        }  # fmt: skip
        for r in doc["lines"]
    ]
    return pl.DataFrame(
        rows, schema={k: pl.String for k in ("line", "section", "description", "value")}
    )
