"""Methodology: measure definitions (from the release), disclosure control, glossary,
data guidance and the accessibility statement."""

from __future__ import annotations

import polars as pl
import streamlit as st

from portal.web import data, ui

ctx = ui.page("methodology")
policy = ctx.policy
meta = ctx.measures()

definitions, method, glossary, guidance, accessibility = st.tabs(
    ["Measures", "Disclosure control", "Glossary", "Data guidance", "Accessibility"]
)

with definitions:
    st.header("What each measure counts")
    st.caption(f"Definitions as published with release {ctx.release_id}.")
    measures = pl.DataFrame(
        [
            {
                "Measure": m.title,
                "Name": m.name,
                "Definition": m.definition,
                "Counted in": m.unit,
                "Shown as": (
                    "count"
                    if m.denominator is None
                    else (
                        "percentage of "
                        if m.denominator.per == 100
                        else f"rate per {m.denominator.per:,} "
                    )
                    + meta[m.denominator.measure].title.lower()
                ),
                "Breakdowns": ", ".join(data.dimension_title(d) for d in m.breakdowns),
                "Notes": " ".join(m.footnotes),
            }
            for m in sorted(meta.values(), key=lambda m: m.title)
        ]
    )
    ui.frame_table(measures, key="meth_measures", file_name="measure-definitions")

with method:
    st.header("How published figures are protected")
    sym = policy.symbols
    symbols = (
        f"**{sym.confidential}** confidential, **{sym.not_applicable}** not applicable, "
        f"**{sym.unavailable}** not available"
    )
    st.markdown(
        f"""
Disclosure control policy **{policy.ref}**: {policy.description}

| Rule | Value |
|---|---|
| Largest change to any count | {policy.max_noise} |
| Smallest count shown (smaller counts are **{policy.symbols.confidential}**) | {policy.threshold} |
| Most dimensions in one table (breakdowns and filters together) | {policy.max_table_dims} |
| Symbols | {symbols} |
"""
    )
    method_text = ui.disclosure_method()
    if method_text:
        with st.expander("The method in full", expanded=False):
            st.markdown(method_text)

with glossary:
    st.header("Glossary")
    st.markdown(ui.content("glossary"))

with guidance:
    st.header("Data guidance")
    st.markdown(ui.content("data_guidance"))
    if ctx.config.demo:
        st.warning(
            "In this demo every record is synthetic: a fictional county generated with "
            "known noise so that linkage quality can be measured."
        )

with accessibility:
    st.header("Accessibility statement")
    st.markdown(ui.content("accessibility", contact=ctx.contact))
