"""Supporting Families claims: successful family outcomes against the council's target,
the claim rules, outcomes by headline, and the quarterly progress return."""

from __future__ import annotations

import streamlit as st

from portal.web import downloads, planning, ui

ctx = ui.page("sf_claims")
doc = ui.guarded(planning.sf_claims, ctx.role_key, ctx.token, ctx.release_id)

st.write(
    "Successful family outcomes are the families the council can claim for under the "
    "Supporting Families programme guidance 2022 to 2025: a family with dependent children, "
    "needs under at least three headlines, a whole family assessment and plan, a lead "
    "practitioner, and significant and sustained progress on every need, held at least six "
    "months after the episode closed. A family is counted on the day the claim can first be "
    "made (six months after closure). Every figure is protected by disclosure control."
)

current = doc["current_year"]
left, middle, right = st.columns(3)
left.metric(
    f"Successful family outcomes, {current['period']} so far",
    (current["claims"] or {}).get("shown", "0"),
)
middle.metric(
    f"Target for {current['period']}",
    "not set" if current["target"] is None else str(current["target"]),
)
right.metric(
    "Progress against the target",
    f"{current['progress_shown']}%"
    if current["progress"] is not None
    else current["progress_shown"] or "-",
    help=f"{current['share_of_year_elapsed']}% of the financial year has passed.",
)
if current["progress"] is not None:
    st.progress(
        min(current["progress"] / 100, 1.0),
        text=f"{current['share_of_year_elapsed']}% of the year has passed",
    )

by = st.segmented_control(
    "Time period",
    ["years", "quarters"],
    default="years",
    format_func=lambda d: "Financial year" if d == "years" else "Quarter",
    required=True,
    key="sf_by",
)
by = by or "years"
ui.headline(
    "Claims by financial year" if by == "years" else "Claims by quarter",
    "Families worked with, due a claim review and claimed",
)
ui.frame_table(
    planning.periods_frame(doc, by), key="sf_periods", file_name=f"sf-claims-{by}-{ctx.release_id}"
)

years = [y["period"] for y in doc["years"] if y["complete"]][::-1]
if years:
    chosen = st.selectbox("Financial year", years, key="sf_year")
    ui.headline(
        f"Claim rules met, {chosen}",
        "Families due a claim review in the year meeting each rule",
    )
    ui.frame_table(
        planning.rules_frame(doc, chosen),
        key="sf_rules",
        file_name=f"sf-rules-{chosen.replace('/', '-')}",
    )
    outcomes = planning.outcomes_frame(doc, chosen)
    ui.chart(
        planning.outcomes_figure(outcomes),
        outcomes.drop("_value"),
        key="sf_outcomes",
        title=f"Outcomes by headline, {chosen}",
        subtitle="Needs of families due a claim review with significant and sustained progress (%)",
        alt=(
            f"Bar chart of the share of needs with significant and sustained progress by "
            f"headline outcome, {chosen}; suppressed shares (c) are not drawn."
        ),
        file_name=f"sf-outcomes-{chosen.replace('/', '-')}",
        drawn=outcomes["_value"].drop_nulls().len() > 0,
    )

ui.headline("Quarterly progress return", "The figures of the return, ready to submit")
quarters = planning.complete_quarters(doc)
if quarters:
    quarter = st.selectbox("Quarter", quarters, key="sf_quarter")
    filled = ui.guarded(planning.sf_return, ctx.role_key, ctx.token, ctx.release_id, quarter)
    frame = planning.return_frame(filled)
    st.dataframe(frame, hide_index=True, key="sf_return_table")
    st.download_button(
        "Download the return (CSV)",
        lambda: downloads.csv_bytes(frame),
        file_name=f"sf-return-{quarter.replace('/', '-').replace(' ', '-')}.csv",
        mime="text/csv",
        key="sf_return_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    ui.notes(filled["notes"])
else:
    st.info("No complete quarter in this release yet.")
ui.notes(doc["notes"])
