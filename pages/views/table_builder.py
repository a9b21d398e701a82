"""Table builder (all roles): choose a measure, breakdowns and filters; get the
protected table with its symbols and notes; download it."""

from __future__ import annotations

import streamlit as st

from portal.web import data, ui

ctx = ui.page("table_builder")
meta = ctx.measures()
policy = ctx.policy

st.write(
    "Build a table from any published measure. Every table is protected on the way out: "
    f"each count may differ from the true count by up to {policy.max_noise}, counts below "
    f"{policy.threshold} are shown as **{policy.symbols.confidential}**, and totals are "
    "protected on their own. Your queries are recorded in the audit log."
)

choices = sorted(meta, key=lambda m: meta[m].title)
measure = st.selectbox(
    "1. Measure",
    choices,
    index=choices.index("contacts") if "contacts" in choices else 0,
    format_func=lambda m: meta[m].title,
    key="tb_measure",
)
m = meta[measure]
limit = min(policy.max_table_dims, m.max_dims or policy.max_table_dims)
rate = ""
if m.denominator is not None:
    per = "a percentage" if m.denominator.per == 100 else f"a rate per {m.denominator.per:,}"
    rate = f" Shown as {per} of {meta[m.denominator.measure].title.lower()}."
st.caption(f"{m.definition} Counted in {m.unit}.{rate}")

by = st.multiselect(
    "2. Break down by (rows)",
    m.breakdowns,
    format_func=data.dimension_title,
    default=["locality"] if "locality" in m.breakdowns else None,
    max_selections=limit,
    key=f"tb_by_{measure}",
    help=f"A table may use at most {limit} dimensions, breakdowns and filters together.",
)
room = limit - len(by)
filters = st.multiselect(
    "3. Filter to one value of",
    [d for d in m.breakdowns if d not in by],
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
        where[dim] = col.selectbox(
            data.dimension_title(dim),
            ui.guarded(ctx.levels, measure, dim),
            key=f"tb_value_{measure}_{dim}",
        )
if by:
    with st.expander("Show only some rows (optional)"):
        for dim in by:
            rows = st.multiselect(
                f"{data.dimension_title(dim)}: rows to show (none chosen: all)",
                ui.guarded(ctx.levels, measure, dim),
                key=f"tb_rows_{measure}_{dim}",
            )
            if rows:
                where[dim] = rows
margins = st.checkbox("Add totals", key="tb_margins")

try:
    table = ui.guarded(ctx.table, measure, by, where, margins=margins)
except data.QueryError as exc:
    st.error("This table cannot be built:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
    st.stop()

subtitle = ui.describe_query(table)
ui.headline(table.title, subtitle)
shown = ui.shown(table)
st.dataframe(shown, hide_index=True, key="tb_table")
st.caption(f"{shown.height:,} row{'s' if shown.height != 1 else ''}.")
ui.table_downloads(shown, table, key="tb", file_name=f"{measure}-table", subtitle=subtitle)
ui.notes(table.footnotes)
