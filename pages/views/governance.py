"""Information governance (administrators): approved projects and their extracts, evaluation
shares, erasure and restriction requests, and what the retention schedule says is due.

Read-only: every change is made on the command line, where it is validated and audited. No
child's or family's identifier is shown: requests are held as keyed tokens and listed
without them."""

from __future__ import annotations

import polars as pl
import streamlit as st

from portal.web import data, ui

ctx = ui.page("governance", needs_release=False)
doc = ui.guarded(data.governance, ctx.role_key, ctx.token)

st.markdown(
    "What the data protection officer and the information governance team need to see in "
    "one place. Nothing here can be changed from the portal: approvals, closures, shares, "
    "requests and deletions are made with `portal projects`, `portal share`, "
    "`portal requests` and `portal retention`, each of which is validated and written to "
    "the audit log."
)

STATE = {"open": "Open", "closed": "Closed", "expired": "Expired"}


st.header("Approved projects")
projects = doc["projects"]
if not projects:
    st.info("No project has been approved yet (`portal projects add`).")
else:
    open_n = sum(p["state"] == "open" for p in projects)
    ended_files = sum(p["extract_files_on_server"] for p in projects if p["state"] != "open")
    cols = st.columns(3)
    cols[0].metric("Open projects", f"{open_n:,}", border=True)
    cols[1].metric("Extracts released (all projects)", f"{sum(p['extracts'] for p in projects):,}",
                   border=True)  # fmt: skip
    cols[2].metric("Files of ended projects still on the server", f"{ended_files:,}", border=True)
    if ended_files:
        st.warning(
            "Extract files of closed or expired projects are still on the server: "
            "`portal retention --apply` deletes them (`--dry-run` lists them first)."
        )
    ui.frame_table(
        pl.DataFrame(
            [
                {
                    "Project": p["project_id"],
                    "Title": p["title"],
                    "Kind": "Evaluation share" if p["kind"] == "evaluation_share" else "Research",
                    "State": STATE.get(p["state"], p["state"]),
                    "Lawful basis": p["lawful_basis"],
                    "Approver": p["approver"],
                    "Approved": p["approved_on"],
                    "Expires": p["expires_on"],
                    "Closed": p["closed_on"],
                    "Named people": ", ".join(p["researchers"]),
                    "Approved variables or programmes": ", ".join(p["variables"]),
                    "Family-level analysis": "yes" if p["family_analysis"] else "no",
                    "Extracts released": p["extracts"],
                    "Last extract (UTC)": data.minute(p["last_extract_at"]),
                    "Extract files on the server": p["extract_files_on_server"],
                }
                for p in projects
            ]
        ),
        key="gov_projects",
        file_name="approved-projects",
    )

st.header("Evaluation shares")
shares = doc["shares"]
if not shares:
    st.info("No evaluation share has been made (`portal share evaluation`).")
else:
    ui.frame_table(
        pl.DataFrame(
            [
                {
                    "Share": s["share_id"],
                    "Programme": s["programme"],
                    "Period": s["period"],
                    "Project": s["project_id"],
                    "Made by": s["created_by"],
                    "Made (UTC)": data.minute(s["created_at"]),
                    "Reason": s["reason"],
                    "Encrypted files": s["files"],
                    "Recipient deletes by": s["expires_on"],
                    "Past that date": "yes" if s["expired"] else "no",
                }
                for s in shares
            ]
        ),
        key="gov_shares",
        file_name="evaluation-shares",
    )

st.header("Erasure and restriction requests")
req = doc["requests"]
counts = req["counts"]
cols = st.columns(4)
cols[0].metric("Erasure requests in force", f"{counts.get('erasure_active', 0):,}", border=True)
cols[1].metric("Restriction requests in force", f"{counts.get('restriction_active', 0):,}",
               border=True)  # fmt: skip
cols[2].metric("Not yet applied by a run", f"{counts.get('active_not_yet_applied', 0):,}",
               border=True)  # fmt: skip
cols[3].metric("Matched nobody at the last run", f"{counts.get('active_matching_nobody', 0):,}",
               border=True)  # fmt: skip
if counts.get("active_matching_nobody"):
    st.warning(
        "Some requests in force matched nobody at the last run: check the identifiers "
        "recorded with them (the request stays in force and is applied whenever it matches)."
    )
st.caption(
    "Each request is held as keyed tokens of the identifiers given, never the identifiers "
    "themselves, and is applied at every pipeline run until it is lifted."
)
if req["requests"]:
    ui.frame_table(
        pl.DataFrame(
            [
                {
                    "Request": r["request_id"],
                    "Type": str(r["type"]).capitalize(),
                    "Received": r["received_on"],
                    "Status": "In force" if r["status"] == "active" else "Lifted",
                    "Identifiers given": r["identifier_kinds"],
                    "Recorded by": r["created_by"],
                    "Recorded (UTC)": data.minute(r["created_at"]),
                    "Lifted (UTC)": data.minute(r["closed_at"]),
                    "Last applied (UTC)": data.minute(r["last_run_at"]),
                    "Matched at the last run": r["people_matched_last_run"],
                }
                for r in req["requests"]
            ]
        ),
        key="gov_requests",
        file_name="erasure-and-restriction-requests",
    )

st.header("Retention: due for deletion now")
due = doc["retention_due"]
if not due:
    st.success("Nothing has outlived the retention schedule.")
else:
    st.caption(
        "What the schedule in the disclosure-control policy says should be deleted today. "
        "`portal retention --apply` deletes exactly this and audits each category's count."
    )
    ui.frame_table(
        pl.DataFrame(
            [
                {
                    "Category": d["category"].replace("_", " ").capitalize(),
                    "Items": d["count"],
                    "Oldest": (d["oldest"] or "")[:10],
                }
                for d in due
            ],
            schema={"Category": pl.String, "Items": pl.Int64, "Oldest": pl.String},
        ),
        key="gov_retention",
        file_name="retention-due",
    )
