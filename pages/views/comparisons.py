"""Comparisons: our published figures beside the region, the statistical neighbours and
England, as DfE's Local Authority Interactive Tool shows an authority."""

from __future__ import annotations

import streamlit as st

from portal.web import planning, ui

ctx = ui.page("comparisons")
doc = ui.guarded(planning.comparisons, ctx.role_key, ctx.token, ctx.release_id)
name = doc["authority"]["name"]

st.write(
    f"{name}'s published figures beside {doc['authority']['region']}, the mean of its "
    f"{len(doc['neighbours']['codes'])} statistical neighbours and "
    f"{doc['authority']['country']}, for each measure with a national equivalent. "
    f"{name}'s figures are protected by disclosure control, as everywhere in the portal; "
    "the others are the published figures in the comparator files loaded."
)
if doc["datasets_loaded"] == 0:
    st.info(
        "No comparator statistics have been loaded yet. An administrator loads DfE's "
        "published files with `portal comparators load FILE...`.",
        icon=":material/info:",
    )
for note in planning.dataset_notes(doc):
    st.warning(note, icon=":material/info:")

summary = planning.summary_frame(doc)
if summary.height:
    ui.headline(
        f"{name} beside its comparators",
        f"Latest complete financial year of each measure. Quartile band: {planning.BAND_MEANING}.",
    )
    ui.frame_table(summary, key="cmp_summary", file_name=f"comparisons-{ctx.release_id}")

    titles = {c["measure"]: c["title"] for c in doc["compared"]}
    chosen = st.selectbox(
        "Measure", list(titles), format_func=lambda m: titles[m], key="cmp_measure"
    )
    comparison = next(c for c in doc["compared"] if c["measure"] == chosen)
    ui.chart(
        planning.trend_figure(comparison, name),
        planning.series_frame(comparison, name),
        key="cmp_trend",
        title=comparison["title"],
        subtitle=(
            f"{comparison['unit']}, by financial year · compared with "
            f"{comparison['indicator_label']} · "
            f"{planning.POLARITY_TITLES.get(comparison['polarity'], '')}"
        ),
        alt=planning.describe_trend(comparison, name),
        file_name=f"comparison-{chosen}-{ctx.release_id}",
        footnotes=doc["notes"],
    )

with st.expander("Measures without a national equivalent"):
    st.write(
        "These measures are not compared: no national figure counts the same thing, or the "
        "comparator file has not been loaded."
    )
    ui.frame_table(planning.not_compared_frame(doc), key="cmp_none", file_name="not-compared")
ui.notes(doc["notes"])
