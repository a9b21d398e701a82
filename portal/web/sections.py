"""Chart sections (one query, one headline, one chart, its table and its CSV), headline
tiles, the table builder's texts and the printable report: what a page draws from its
`PageContext` (`portal.web.checkpoint`), all from protected tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from portal.web import charts, data, downloads, headlines, permalink, report
from portal.web.checkpoint import FY, PageContext, guarded
from portal.web.widgets import anchor, chart, shown, value_title

# --- chart sections: one query, one headline, one chart, its table and its CSV --------------


def _where_text(where: Mapping[str, str | Sequence[str]] | None) -> str:
    parts = [
        f"{data.dimension_title(k).lower()} {v if isinstance(v, str) else ', '.join(v)}"
        for k, v in (where or {}).items()
    ]
    return "; ".join(parts) if parts else "all localities"


def _flagged(frame: pl.DataFrame, table: data.ProtectedTable, symbol: str) -> pl.DataFrame:
    return frame.with_columns(
        headlines.suppressed(frame, is_rate=table.is_rate, symbol=symbol).alias("_c")
    )


def year_points(
    ctx: PageContext,
    measure: str,
    where: Mapping[str, str] | None = None,
    table: data.ProtectedTable | None = None,
) -> tuple[data.ProtectedTable, list[tuple[str, float | None]]]:
    """The measure's complete financial years (value, None where suppressed): what a
    headline may talk about."""
    years = table or guarded(ctx.table, measure, (FY,), where)
    complete = set(
        headlines.complete_periods(
            FY,
            years.data[FY].to_list(),
            ctx.data_as_at,
            partial=years.partial_periods.get(FY, ()),
            covers=years.covers,
        )
    )
    points = [
        p for p in headlines.series(years.data, FY, is_rate=years.is_rate) if p[0] in complete
    ]
    return years, points


def trend_chart(
    ctx: PageContext,
    measure: str,
    period: str,
    *,
    key: str,
    series: str | None = None,
    where: Mapping[str, str] | None = None,
    view: permalink.Params | None = None,
) -> None:
    """A line chart of complete periods, split by `series` if given. When most of its points
    would be suppressed it sheds all but the top five series, then moves to a coarser grain
    (month, quarter, financial year), and says so; suppressed points are marked."""
    series = series or None
    symbol = ctx.policy.symbols.confidential
    total = ctx.policy.total_label
    allowed = ctx.measures()[measure].breakdowns
    grains = [period]
    while (nxt := headlines.COARSER.get(grains[-1])) is not None and nxt in allowed:
        grains.append(nxt)
    fetched: dict[str, data.ProtectedTable] = {}
    rows: dict[str, pl.DataFrame] = {}
    for grain in grains:
        # A coarser grain is asked for only when this one is mostly suppressed.
        table = guarded(ctx.table, measure, (grain, series) if series else (grain,), where)
        fetched[grain] = table
        rows[grain] = headlines.chartable(
            table.data,
            grain,
            series,
            data_as_at=ctx.data_as_at,
            partial=table.partial_periods.get(grain, ()),
            covers=table.covers,
            total_label=total,
        )
        if not headlines.mostly_suppressed(
            rows[grain], series, is_rate=table.is_rate, symbol=symbol
        ):
            break
    plan = headlines.plan_trend(
        rows,
        period,
        series,
        is_rate=fetched[period].is_rate,
        symbol=symbol,
        series_title=f"{data.dimension_title(series).lower()} groups" if series else "series",
    )
    table = fetched[plan.period]
    grain = plan.period
    dims = (grain, series) if series else (grain,)
    periods = plan.rows[grain].unique(maintain_order=True).to_list()
    # The headline is the year-on-year finding, whatever the chart's grain: a single quarter
    # or month is too noisy to lead with.
    reuse = table if (grain == FY and series is None) else None
    _, points = year_points(ctx, measure, where, reuse)
    y = headlines.value_column(table.is_rate)
    percent = table.rate_per == 100
    x_title = headlines.PERIOD_TITLES[grain]
    split = f", by {data.dimension_title(series).lower()}" if series else ""
    left_out = list(table.partial_periods.get(grain, ()))
    complete_note = "Complete periods only" + (
        f"; {headlines.join_words(left_out)} not yet complete and left out" if left_out else ""
    )
    drawn = _flagged(plan.drawn, table, symbol)
    hidden = int(drawn["_c"].sum())
    chart(
        charts.line_figure(
            drawn,
            grain,
            y,
            series=series,
            x_title=x_title,
            y_title=value_title(table),
            percent=percent,
            flag="_c",
        ),
        shown(table, dims, plan.rows),
        key=key,
        title=headlines.trend_headline(
            table.title,
            points,
            dim=FY,
            is_rate=table.is_rate,
            unit=headlines.rate_unit(table.rate_per) if table.is_rate else "",
        ),
        subtitle=(
            f"{value_title(table)} by {x_title.lower()}{split}, "
            f"{_where_text(where)}, {headlines.span(grain, periods)}. {complete_note}."
        ),
        alt=headlines.describe_chart(
            "Line chart",
            drawn,
            grain,
            y,
            what=f"{value_title(table).lower()} ({table.title.lower()})",
            x_title=x_title,
            series_dim=series,
            percent=percent,
            suppressed_rows=hidden,
        ),
        file_name=f"{measure}-by-{'-'.join(dims)}",
        footnotes=table.footnotes,
        drawn=bool(drawn[y].is_not_null().any()),
        notes=plan.notes,
        link=None if view is None else ctx.link(view, anchor=anchor(key)),
        table_when_open=True,
    )


def bar_chart(
    ctx: PageContext,
    measure: str,
    dim: str,
    *,
    key: str,
    when: str,
    where: Mapping[str, str] | None = None,
    horizontal: bool = True,
    view: permalink.Params | None = None,
) -> None:
    """A bar chart of `measure` by `dim` (one category per bar; a suppressed one marked c)."""
    symbol = ctx.policy.symbols.confidential
    table = guarded(ctx.table, measure, (dim,), where)
    plotted = _flagged(table.data, table, symbol)
    y = headlines.value_column(table.is_rate)
    percent = table.rate_per == 100
    x_title = data.dimension_title(dim)
    rest = {k: v for k, v in (where or {}).items() if k != FY}
    partial = [p for vs in table.partial_periods.values() for p in vs]
    chart(
        charts.bar_figure(
            plotted,
            dim,
            y,
            x_title=x_title,
            y_title=value_title(table),
            percent=percent,
            horizontal=horizontal,
            flag="_c",
        ),
        shown(table, (dim,), plotted),
        key=key,
        title=headlines.bar_headline(
            table.title,
            table.unit,
            plotted,
            dim,
            is_rate=table.is_rate,
            rate_per=table.rate_per,
            when=when,
        ),
        subtitle=(
            f"{value_title(table)} by {x_title.lower()}, {_where_text(rest)}, {when}."
            + (f" {headlines.join_words(partial)} is not yet complete." if partial else "")
        ),
        alt=headlines.describe_chart(
            "Bar chart",
            plotted,
            dim,
            y,
            what=f"{value_title(table).lower()} ({table.title.lower()})",
            x_title=x_title,
            percent=percent,
            suppressed_rows=int(plotted["_c"].sum()),
        ),
        file_name=f"{measure}-by-{dim}",
        footnotes=table.footnotes,
        drawn=bool(plotted[y].is_not_null().any()),
        link=None if view is None else ctx.link(view, anchor=anchor(key)),
        table_when_open=True,
    )


@dataclass(frozen=True)
class Tile:
    measure: str
    figure: headlines.Headline


def common_period(tiles: Sequence[Tile]) -> str | None:
    """The period most tiles show (None: none has a complete year)."""
    years = Counter(t.figure.period for t in tiles if t.figure.period)
    return years.most_common(1)[0][0] if years else None


def tile_figures(ctx: PageContext, measures: Sequence[str]) -> list[Tile]:
    """Each measure's headline figure: its latest complete financial year (which can differ
    between measures: sustained progress needs six months after a year ends) and the change
    on the year before, never across a suppressed or incomplete year."""
    threshold = ctx.policy.threshold
    out = []
    for m in measures:
        if not ctx.has(m):
            continue
        table = guarded(ctx.table, m, (FY,))
        partial = table.partial_periods.get(FY, ())
        current, previous = headlines.latest_two(
            FY, table.data[FY].to_list(), ctx.data_as_at, partial=partial, covers=table.covers
        )
        out.append(
            Tile(
                m,
                headlines.headline_figure(
                    table.title,
                    table.data,
                    FY,
                    current,
                    previous,
                    is_rate=table.is_rate,
                    rate_per=table.rate_per,
                    threshold=threshold,
                    partial=partial,
                ),
            )
        )
    return out


def headline_tiles(ctx: PageContext, measures: Sequence[str], *, columns: int = 3) -> str | None:
    """Headline tiles for each measure's latest complete financial year, with the change on
    the year before; returns the year most of them show. A tile whose year differs says so
    in its label; a suppressed figure (`c`) says why in place."""
    tiles = tile_figures(ctx, measures)
    if not tiles:
        st.info("This release has none of these measures.")
        return None
    common = common_period(tiles)
    cols = st.columns(columns)
    for i, tile in enumerate(tiles):
        fig = tile.figure
        label = fig.label + (f" ({fig.period})" if fig.period and fig.period != common else "")
        with cols[i % columns].container(border=True, key=f"tile_{tile.measure}"):
            # The label as text above the figure: a metric's own label is cut to one line.
            st.markdown(f"**{label}**", help=fig.help)
            st.metric(
                label,
                fig.value,
                fig.delta,
                delta_color="off",
                delta_arrow="off" if fig.suppressed else "auto",
                label_visibility="collapsed",
            )
            if fig.note:
                st.caption(fig.note)
    return common


# --- the table builder ------------------------------------------------------------------------


def describe_query(table: data.ProtectedTable, *, columns: str | None = None) -> str:
    """The statistical subtitle of a table-builder table."""
    what = value_title(table)
    rows = [d for d in table.by if d != columns]
    dims = " and ".join(data.dimension_title(d).lower() for d in rows)
    text = f"{what}{' by ' + dims if dims else ', all'}"
    if columns:
        text += f" (rows) by {data.dimension_title(columns).lower()} (columns)"
    filters = [(k, v) for k, v in table.where if k not in table.by]
    if filters:
        text += "; " + "; ".join(
            f"{data.dimension_title(k).lower()} {', '.join(v)}" for k, v in filters
        )
    if table.data_as_at:
        text += f". Data as at {table.data_as_at:%d %B %Y}, release {table.release_id}."
    return text


def period_covered(table: data.ProtectedTable, time_dims: Sequence[str]) -> str:
    """Which time a table covers, in words: a period filter, the periods of its rows or
    columns, or every period added together; and which of them are not complete."""
    where = dict(table.where)
    partial = [p for vs in table.partial_periods.values() for p in vs]
    late = (
        f" Not yet complete: {headlines.join_words(partial)} (do not compare with whole periods)."
        if partial
        else ""
    )
    for dim in time_dims:
        if dim in where and dim not in table.by:
            values = list(where[dim])
            spans = "; ".join(headlines.period_label(dim, v) for v in values)
            return f"Period covered: {', '.join(values)} ({spans}).{late}"
    for dim in time_dims:
        if dim in table.by:
            values = [
                v
                for v in table.data[dim].unique(maintain_order=True).to_list()
                if headlines.period_bounds(dim, v)
            ]
            grain = headlines.PERIOD_TITLES[dim].lower()
            return f"Periods covered: {headlines.span(dim, values)}, by {grain}.{late}"
    if table.covers is not None:
        return (
            "Period covered: every period from "
            f"{headlines.describe_span(*table.covers)} added together (no time breakdown). "
            "Choose a financial year or quarter to see one period."
        )
    return "This measure has no time dimension."


# --- the printable report ---------------------------------------------------------------------

# Sections other parts of the portal add to the report, after the headline figures: a
# function (ctx, kind) -> report.Section or None. Issue 14's comparisons with England,
# region and statistical neighbours append theirs here when they land.
REPORT_SECTIONS: list[Callable[[PageContext, str], report.Section | None]] = []

REPORTS: dict[str, dict[str, Any]] = {
    "home": {
        "title": "Children's services: headline figures",
        "trends": (
            "contacts",
            "eh_referrals",
            "cin_referrals",
            "cp_plans_at_31_march",
            "sf_families_worked_with",
            "sf_significant_sustained_progress",
        ),
        "bars": (),
    },
    "programme": {
        "title": "Supporting Families: programme outcomes",
        "trends": (
            "sf_families_worked_with",
            "whole_family_assessments",
            "sf_significant_sustained_progress",
        ),
        "bars": (("sf_needs_at_entry", "need"), ("sf_significant_sustained_progress", "locality")),
    },
}


def _points(frame: pl.DataFrame, dim: str, table: data.ProtectedTable) -> tuple[report.Point, ...]:
    col, shown_col = headlines.value_column(table.is_rate), headlines.shown_column(table.is_rate)
    return tuple(
        report.Point(str(label), value, str(text))
        for label, value, text in frame.select(dim, col, shown_col).iter_rows()
    )


def report_document(ctx: PageContext, kind: str) -> report.Report:
    """The printable report (`kind`: "home" or "programme"), from protected tables only;
    `downloads.report_bytes` renders it (every text escaped) for the download."""
    spec = REPORTS[kind]
    policy = ctx.policy
    figures: list[report.Figure] = []
    tiles = {t.measure: t.figure for t in tile_figures(ctx, spec["trends"])}
    for m in spec["trends"]:
        if m not in tiles:
            continue
        years, points = year_points(ctx, m)
        rows = years.data.filter(pl.col(FY).is_in([p for p, _ in points]))
        fig = tiles[m]
        figures.append(
            report.Figure(
                title=years.title,
                headline=headlines.trend_headline(
                    years.title,
                    points,
                    dim=FY,
                    is_rate=years.is_rate,
                    unit=headlines.rate_unit(years.rate_per) if years.is_rate else "",
                ),
                kind="line",
                points=_points(rows, FY, years),
                value_title=value_title(years),
                x_title="Financial year",
                percent=years.rate_per == 100,
                tile=(
                    fig.value + (f" ({fig.period})" if fig.period else ""),
                    fig.delta or "",
                    fig.note or "",
                ),
                footnotes=years.footnotes,
            )
        )
    for m, dim in spec["bars"]:
        if not ctx.has(m):
            continue
        complete = ctx.complete_levels(m, FY)
        if not complete:
            continue
        year = complete[-1]
        table = guarded(ctx.table, m, (dim,), {FY: year})
        figures.append(
            report.Figure(
                title=table.title,
                headline=headlines.bar_headline(
                    table.title,
                    table.unit,
                    table.data,
                    dim,
                    is_rate=table.is_rate,
                    rate_per=table.rate_per,
                    when=year,
                ),
                kind="bar",
                points=_points(table.data, dim, table),
                value_title=value_title(table),
                x_title=data.dimension_title(dim),
                percent=table.rate_per == 100,
                footnotes=table.footnotes,
            )
        )
    sections = [s for hook in REPORT_SECTIONS if (s := hook(ctx, kind)) is not None]
    release = ctx.release
    assert release is not None
    superseded = None
    if ctx.superseded and ctx.latest is not None:
        superseded = (
            f"Superseded: release {release.release_id} has been replaced by release "
            f"{ctx.latest.release_id} (data as at {ctx.latest.data_as_at:%d %B %Y}); these "
            "are the figures as first published."
        )
    sym = policy.symbols
    doc = report.Report(
        title=spec["title"],
        subtitle=(
            "Each figure is for the latest complete financial year (April to March) of its "
            "measure, with the change on the year before. Prepared by the council's research "
            "and statistics portal."
        ),
        release_line=(
            f"Release {release.release_id} · data as at {release.data_as_at:%d %B %Y} · "
            f"disclosure control policy {release.policy_id}"
        ),
        figures=tuple(figures),
        disclosure=(
            f"Every figure in this report is protected by disclosure control ({policy.ref}): "
            f"{policy.description}",
            f"Each count may differ from the true count by up to {policy.max_noise}, and the "
            "same cell always shows the same value, so comparing tables reveals nothing more. "
            f"Counts below {policy.threshold} are shown as {sym.confidential} (confidential); "
            f"{sym.not_applicable} means not applicable, {sym.unavailable} not available. "
            "Percentages and rates are calculated from protected counts, and a percentage is "
            "never shown above 100%.",
            "People on the objections register are left out of every figure. No individual "
            "is identified in anything this report contains.",
        ),
        superseded=superseded,
        sections=tuple(sections),
        demo=ctx.config.demo,
    )
    return doc


def report_button(ctx: PageContext, kind: str) -> None:
    """One click: the printable report of this page's headline measures (built on the
    click, not on every run of the page)."""
    st.download_button(
        "Printable report (HTML, print or save as PDF)",
        lambda: downloads.report_bytes(report_document(ctx, kind)),
        file_name=f"{kind}-report-{ctx.release_id}.html",
        mime="text/html",
        key=f"report_{kind}",
        on_click="ignore",
        icon=":material/print:",
        type="primary",
    )
