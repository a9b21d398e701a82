"""Table builder (all roles): choose a measure, rows, optional columns (a cross-tabulation)
and filters; get the protected table with the period it covers, its symbols and notes;
download it or copy its link (the view is kept in the address)."""

from __future__ import annotations

import streamlit as st

from portal.web import data, headlines, permalink, ui

ctx = ui.page("table_builder")
meta = ctx.measures()
policy = ctx.policy
url = ctx.url
TIME = ("financial_year", "quarter", "month", "year")

st.write(
    "Build a table from any published measure. Every table is protected on the way out: "
    f"each count may differ from the true count by up to {policy.max_noise}, counts below "
    f"{policy.threshold} are shown as **{policy.symbols.confidential}**, and totals are "
    "protected on their own. Your queries are recorded in the audit log."
)


def body() -> None:
    """The controls and what they show: a change reruns only this (`ctx.body`)."""
    choices = sorted(meta, key=lambda m: meta[m].title)
    ctx.start("tb_measure", ui.pick(permalink.one(url, "measure"), choices, "contacts"))
    measure = st.selectbox(
        "1. Measure", choices, format_func=lambda m: meta[m].title, key="tb_measure"
    )
    m = meta[measure]
    # The address's choices apply to the measure it names; another measure starts afresh.
    linked = permalink.one(url, "measure") == measure
    asked_where = permalink.pairs(url, "where") if linked else {}
    asked_rows = permalink.pairs(url, "rows") if linked else {}
    limit = min(policy.max_table_dims, m.max_dims or policy.max_table_dims)
    rate = ""
    if m.denominator is not None:
        per = "a percentage" if m.denominator.per == 100 else f"a rate per {m.denominator.per:,}"
        rate = f" Shown as {per} of {meta[m.denominator.measure].title.lower()}."
    st.caption(f"{m.definition} Counted in {m.unit}.{rate}")

    asked_by = [d for d in permalink.listed(url, "by") if d in m.breakdowns] if linked else None
    ctx.start(
        f"tb_by_{measure}",
        asked_by[:limit]
        if asked_by is not None
        else [d for d in ("locality",) if d in m.breakdowns],
    )
    by = st.multiselect(
        "2. Rows: break down by",
        m.breakdowns,
        format_func=data.dimension_title,
        max_selections=limit,
        key=f"tb_by_{measure}",
        help=f"A table may use at most {limit} dimensions: rows, columns and filters together.",
    )
    column_choices = [ui.ALL, *(d for d in m.breakdowns if d not in by)]
    ui.keep_valid(f"tb_cols_{measure}", column_choices)
    ctx.start(
        f"tb_cols_{measure}",
        ui.pick(permalink.one(url, "cols") if linked else None, column_choices),
    )
    columns = st.selectbox(
        "3. Columns (optional): cross-tabulate by",
        column_choices,
        format_func=lambda d: data.dimension_title(d) if d else "No columns (one value column)",
        disabled=len(by) >= limit or not by,
        key=f"tb_cols_{measure}",
        help="Puts one dimension across the top: rows by columns, one protected value per cell.",
    )
    columns = (columns or None) if by and len(by) < limit else None
    dims = [*by, *([columns] if columns else [])]
    room = limit - len(dims)
    filter_choices = [d for d in m.breakdowns if d not in dims]
    ui.keep_valid(f"tb_filters_{measure}", filter_choices, many=True)
    ctx.start(
        f"tb_filters_{measure}", [d for d in asked_where if d in filter_choices][: max(room, 0)]
    )
    filters = st.multiselect(
        "4. Filter to one value of",
        filter_choices,
        format_func=data.dimension_title,
        max_selections=max(room, 1),
        disabled=room <= 0,
        key=f"tb_filters_{measure}",
        help="Each filter uses one of the table's dimensions. Several values of one filter "
        "cannot be added together (that would make a new, separately protected cell); "
        "break the table down by that dimension instead.",
    )
    where: dict[str, str | list[str]] = {}
    if filters:
        cols = st.columns(len(filters))
        for col, dim in zip(cols, filters, strict=True):
            levels = ui.guarded(ctx.levels, measure, dim)
            key = f"tb_value_{measure}_{dim}"
            ui.keep_valid(key, levels)
            ctx.start(key, ui.pick((asked_where.get(dim) or [None])[0], levels))
            where[dim] = col.selectbox(data.dimension_title(dim), levels, key=key)
    rows_shown: dict[str, list[str]] = {}
    if dims:
        with st.expander("Show only some rows or columns (optional)"):
            for dim in dims:
                levels = ui.guarded(ctx.levels, measure, dim)
                key = f"tb_rows_{measure}_{dim}"
                ui.keep_valid(key, levels, many=True)
                ctx.start(key, [v for v in asked_rows.get(dim, []) if v in levels])
                chosen = st.multiselect(
                    f"{data.dimension_title(dim)}: values to show (none chosen: all)",
                    levels,
                    key=key,
                )
                if chosen:
                    where[dim] = chosen
                    rows_shown[dim] = chosen
    ctx.start("tb_margins", bool(permalink.one(url, "totals")) if linked else False)
    margins = st.checkbox("Add totals", key="tb_margins")
    show = None
    if columns and m.denominator is not None:
        rate_name = "Percentage" if m.denominator.per == 100 else f"Rate per {m.denominator.per:,}"
        ctx.start(f"tb_show_{measure}", ui.pick(permalink.one(url, "show") if linked else None,
                                                ["rate", "count"]))  # fmt: skip
        show = st.segmented_control(
            "Value in each cell",
            ["rate", "count"],
            format_func=lambda v: rate_name if v == "rate" else f"Number of {m.unit}",
            required=True,
            key=f"tb_show_{measure}",
        )

    view = permalink.view(
        measure=measure,
        by=by,
        cols=columns,
        where={k: v for k, v in where.items() if k not in rows_shown},
        rows=rows_shown,
        totals=margins,
        show=show,
    )
    link = ctx.keep_view(view)

    try:
        table = ui.guarded(ctx.table, measure, dims, where, margins=margins)
    except data.QueryError as exc:
        st.error("This table cannot be built:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
        st.stop()

    subtitle = ui.describe_query(table, columns=columns)
    ui.headline(table.title, subtitle)
    st.markdown(f":material/calendar_month: {ui.period_covered(table, TIME)}")
    shown = ui.shown(table)
    row_titles = [data.dimension_title(d) for d in by]
    if columns:
        value = ui.value_title(table) if show != "count" else f"Number of {table.unit}"
        shown = headlines.cross_tab(shown, row_titles, data.dimension_title(columns), value)
        st.caption(f"Cells: {value.lower()}, as published (symbols included).")
    st.dataframe(shown, hide_index=True, key="tb_table")
    st.caption(f"{shown.height:,} row{'s' if shown.height != 1 else ''}.")
    ui.table_downloads(
        shown,
        table,
        key="tb",
        file_name=f"{measure}-table",
        subtitle=subtitle,
        numeric=[c for c in shown.columns if c not in row_titles],
    )
    ui.share_link(link, key="tb", what="table")
    ui.notes(table.footnotes)


ctx.body(body)
