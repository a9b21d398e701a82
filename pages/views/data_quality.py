"""Data quality and privacy (administrators): the last pipeline run, quarantined rows,
the release list and the audit log. Counts and timings only: no identifiers."""

from __future__ import annotations

import polars as pl
import streamlit as st

from portal.web import data, ui

ctx = ui.page("data_quality", needs_release=False)

st.header("Last pipeline run")
st.caption(
    f"Counts of records below the disclosure threshold are shown as <{ctx.policy.threshold}, "
    "not exactly, even here."
)
run = ui.guarded(data.run_summary, ctx.role_key, ctx.token)
if run is None:
    st.info("The release service found no pipeline run summary in its work folder.")
else:
    st.caption(f"Run **{run['run_id']}**, published as release **{run['release_id']}**.")
    counts = run.get("counts") or {}
    cols = st.columns(max(len(counts), 1))
    for col, (name, value) in zip(cols, counts.items(), strict=False):
        col.metric(name.replace("_", " ").capitalize(), value["shown"], border=True)

    ingest = pl.DataFrame(
        [
            {
                "Source": row["source"],
                "Rows in": row["rows_in"]["shown"],
                "Accepted": row["accepted"]["shown"],
                "Quarantined": row["quarantined"]["shown"],
            }
            for row in run.get("ingest") or []
        ],
        schema={"Source": pl.String, "Rows in": pl.String, "Accepted": pl.String,
                "Quarantined": pl.String},
    )  # fmt: skip
    st.subheader("Rows read, accepted and quarantined by source")
    st.caption("Rows in = accepted + quarantined, checked by the pipeline for every source.")
    ui.frame_table(ingest, key="dq_ingest", file_name="ingest-by-source")

    timings = pl.DataFrame(
        {
            "Stage": list((run.get("timings_s") or {}).keys()),
            "Seconds": list((run.get("timings_s") or {}).values()),
        },
        schema={"Stage": pl.String, "Seconds": pl.Float64},
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

    quality = ui.guarded(data.linkage_figures, ctx.role_key, ctx.token)
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
quarantine = ui.guarded(data.quarantine_counts, ctx.role_key, ctx.token)
if quarantine is None or not quarantine.height:
    st.info("No quarantine report was found, or nothing was quarantined.")
else:
    shown = quarantine.select("Source", "Reason", "Rows quarantined")
    plotted = quarantine.select(
        "Source", "Reason", pl.col("rows_value").alias("Rows quarantined")
    ).filter(pl.col("Rows quarantined").is_not_null())
    if plotted.height:
        top = plotted.sort("Rows quarantined", descending=True).row(0, named=True)
        ui.frame_bar_chart(
            plotted,
            "Source",
            "Rows quarantined",
            series="Reason",
            shown=shown,
            key="dq_quarantine",
            title=(
                f"The largest group of quarantined rows: {top['Source']}, {top['Reason']} "
                f"({top['Rows quarantined']:,})"
            ),
            subtitle=(
                "Rows quarantined at ingest, by source system and reason, last run. Groups of "
                f"fewer than {ctx.policy.threshold} rows are in the table only."
            ),
            what="rows quarantined",
            file_name="quarantine-by-source-and-reason",
        )
    else:
        ui.frame_table(shown, key="dq_quarantine", file_name="quarantine-by-source-and-reason")

st.header("Releases")
ui.frame_table(
    ui.guarded(data.release_list, ctx.role_key, ctx.token), key="dq_releases", file_name="releases"
)

st.header("Audit log")
action = st.selectbox(
    "Show",
    [
        None,
        "table_query",
        "release_written",
        "release_failed",
        "release_withdrawn",
        "sign_in",
        "sign_in_failed",
        "sign_in_refused",
        "account_locked",
        "sign_out",
        "extract",
        "extract_refused",
    ],
    format_func=lambda a: "All actions" if a is None else a.replace("_", " ").capitalize(),
    key="dq_action",
)
st.caption(
    "The newest 500 entries: releases written and withdrawn, every table query, every "
    "sign-in, failure, lockout and sign-out, every extract and refusal."
)
ui.frame_table(
    ui.guarded(data.audit_entries, ctx.role_key, ctx.token, action, 500),
    key="dq_audit",
    file_name="audit-log",
)
