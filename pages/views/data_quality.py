"""Data quality and privacy (administrators): the last pipeline run, quarantined rows,
the release list and the audit log. Counts and timings only: no identifiers."""

from __future__ import annotations

import polars as pl
import streamlit as st

from portal.web import data, ui

ctx = ui.page("data_quality", needs_release=False)

st.header("Last pipeline run")
run = data.run_summary(ctx.role_key, ctx.config.work_dir)
if run is None:
    st.info(
        "No pipeline run summary (run.json) was found in the work folder "
        f"({ctx.config.work_dir or 'PORTAL_WORK_DIR is not set'})."
    )
else:
    st.caption(f"Run **{run['run_id']}**, published as release **{run['release_id']}**.")
    counts = run.get("counts") or {}
    cols = st.columns(max(len(counts), 1))
    for col, (name, value) in zip(cols, counts.items(), strict=False):
        col.metric(name.replace("_", " ").capitalize(), f"{value:,}", border=True)

    ingest = pl.DataFrame(run.get("ingest") or []).rename(
        {
            "source": "Source",
            "rows_in": "Rows in",
            "accepted": "Accepted",
            "quarantined": "Quarantined",
        },
        strict=False,
    )
    st.subheader("Rows read, accepted and quarantined by source")
    st.caption("Rows in = accepted + quarantined, checked by the pipeline for every source.")
    ui.frame_table(ingest, key="dq_ingest", file_name="ingest-by-source")

    timings = pl.DataFrame(
        {
            "Stage": list((run.get("timings_s") or {}).keys()),
            "Seconds": list((run.get("timings_s") or {}).values()),
        }
    ).filter(~pl.col("Stage").str.contains(r"\."))
    if timings.height:
        slowest = timings.sort("Seconds", descending=True).row(0, named=True)
        ui.frame_bar_chart(
            timings,
            "Stage",
            "Seconds",
            key="dq_timings",
            title=f"{slowest['Stage'].capitalize()} took longest ({slowest['Seconds']:.1f} s)",
            subtitle="Wall-clock seconds per pipeline stage, last run.",
            what="seconds per pipeline stage",
            file_name="pipeline-timings",
        )

    quality = run.get("linkage_quality")
    st.subheader("Linkage quality")
    if quality:
        st.caption(
            "Measured against the synthetic county's ground truth (pairwise precision and "
            "recall). A real county has no ground truth: this section is then empty."
        )
        ui.frame_table(
            pl.DataFrame(
                [
                    {
                        "Level": level,
                        "Precision": round(q["precision"], 4),
                        "Recall": round(q["recall"], 4),
                        "F1": round(q["f1"], 4),
                        "Split (share of true clusters)": round(q["split_persons"], 4),
                        "Merged (share of predicted clusters)": round(q["merged_clusters"], 4),
                    }
                    for level, q in quality.items()
                ]
            ),
            key="dq_linkage",
            file_name="linkage-quality",
        )
    else:
        st.info("No linkage quality measurement in the last run (no ground truth).")

st.header("Quarantined rows by source and reason")
quarantine = data.quarantine_counts(ctx.role_key, ctx.config.work_dir)
if quarantine is None or not quarantine.height:
    st.info("No quarantine report was found, or nothing was quarantined.")
else:
    by_source = (
        quarantine.group_by("Source")
        .agg(pl.col("Rows quarantined").sum())
        .sort("Rows quarantined", descending=True)
    )
    top = by_source.row(0, named=True)
    ui.frame_bar_chart(
        quarantine,
        "Source",
        "Rows quarantined",
        series="Reason",
        key="dq_quarantine",
        title=f"{top['Source']} had the most quarantined rows ({top['Rows quarantined']:,})",
        subtitle="Rows quarantined at ingest, by source system and reason, last run.",
        what="rows quarantined",
        file_name="quarantine-by-source-and-reason",
    )

st.header("Releases")
ui.frame_table(
    data.release_list(ctx.role_key, ctx.config.store_url), key="dq_releases", file_name="releases"
)

st.header("Audit log")
action = st.selectbox(
    "Show",
    [None, "table_query", "release_written", "release_failed", "release_withdrawn"],
    format_func=lambda a: "All actions" if a is None else a.replace("_", " ").capitalize(),
    key="dq_action",
)
st.caption("The newest 500 entries: releases written and withdrawn, and every table query.")
ui.frame_table(
    data.audit_entries(ctx.role_key, ctx.config.store_url, action, 500),
    key="dq_audit",
    file_name="audit-log",
)
