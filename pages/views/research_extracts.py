"""Research extracts (researchers): an approved project's pseudonymised, k-anonymous
record-level extract, its disclosure-risk report and release certificate, and the files.

Only the signed-in researcher's approved, unexpired projects are offered, and only each
project's approved variables. One build gives every file: they are kept in this session
so each download serves the same build (downloading never rebuilds)."""

from __future__ import annotations

import streamlit as st

from portal.web import data, downloads, ui

ctx = ui.page("research_extracts")
policy, catalogue, sensitive_names = ui.guarded(data.research_catalogue, ctx.role_key, ctx.token)
projects = ui.guarded(data.research_projects, ctx.role_key, ctx.token, ctx.user.user_id)
by_name = {v.name: v for v in catalogue}
RESULT = "research_extract_result"

st.markdown(
    "Build a **record-level extract** for one of your approved research projects. Person and "
    "family pseudonyms are keyed for the project alone, people who objected are left out, "
    "every column goes out through its disclosure treatment, and the extract is checked "
    "together with everything the project already holds (and what other projects hold), so "
    f"that every combination is shared by at least *k* people (policy {policy.ref}: "
    f"k = {policy.k}, distinct l = {policy.l} on a sensitive variable you name, at most "
    f"{policy.suppression_limit:.0%} of records suppressed). Every extract and every refusal "
    "is written to the audit log."
)

if not projects:
    st.info(
        "You are not named on any approved, open research project, so there is nothing to "
        "request. Ask the council's research governance team to register your project "
        "(`portal projects add`) and name your account on it."
    )
    st.stop()

labels = {
    p.project_id: f"{p.title} ({p.project_id}, expires {p.expires_on:%d %B %Y})" for p in projects
}
chosen_id = st.selectbox(
    "Approved project", options=list(labels), format_func=labels.__getitem__, key="rx_project"
)
project = next(p for p in projects if p.project_id == chosen_id)
st.caption(f"**Purpose (on every certificate):** {project.purpose}")
allowed = [v for v in project.variables if v in by_name]
titles = {v: f"{by_name[v].title} ({v})" for v in allowed}

with st.expander("The variables approved for this project"):
    st.dataframe(
        [
            {
                "Variable": v,
                "Title": by_name[v].title,
                "Privacy role": by_name[v].role,
                "Definition": by_name[v].definition,
            }
            for v in allowed
        ],
        hide_index=True,
    )

with st.form("extract_request"):
    variables = st.multiselect(
        "Variables", options=allowed, format_func=titles.__getitem__, key="rx_variables"
    )
    note = st.text_input(
        "Note for this extract (optional)", help="Recorded in the ledger and on the certificate."
    )
    k = st.number_input("k (at least)", min_value=policy.min_k, value=policy.k, step=1)
    offered_sensitive = sorted(s for s in sensitive_names if s in allowed)
    sensitive = st.selectbox(
        "Sensitive variable for l-diversity (optional)", options=["(none)", *offered_sensitive]
    )
    l_value = st.number_input("l (distinct values per class)", min_value=1, value=policy.l, step=1)
    submitted = st.form_submit_button("Build extract", type="primary")

if submitted:
    st.session_state.pop(RESULT, None)
    # An incomplete form is a message here, not a refusal in the audit log.
    if not variables:
        st.warning("Choose at least one variable.")
        st.stop()
    if sensitive != "(none)" and sensitive not in variables:
        st.warning(f"The sensitive variable {sensitive!r} must be one of the chosen variables.")
        st.stop()
    request = data.ExtractRequest(
        project=project.project_id,
        purpose=note.strip(),
        variables=tuple(variables),
        k=int(k),
        l=int(l_value) if sensitive != "(none)" else None,
        sensitive=None if sensitive == "(none)" else sensitive,
    )
    try:
        with st.spinner("Generalising and checking the extract"):
            files = ui.guarded(data.build_research_extract, ctx.role_key, ctx.token, request)
    except data.ExtractInvalid as invalid:
        st.warning("The request is incomplete: " + " ".join(invalid.problems))
        st.stop()
    except data.ExtractRefused as refused:
        st.error("**The extract was refused.** " + " ".join(refused.reasons))
        if refused.suggestions:
            st.markdown("**What would pass:**\n" + "\n".join(f"- {s}" for s in refused.suggestions))
        st.stop()
    st.session_state[RESULT] = files

files = st.session_state.get(RESULT)
if files is not None:
    cert = files.certificate
    achieved = cert["achieved"]
    l_text = (
        f", distinct l = {int(achieved['l_diversity_distinct'])}"
        if achieved.get("l_diversity_distinct")
        else ""
    )
    st.success(
        f"Extract built: {cert['records']['released']:,} records, "
        f"k = {int(achieved['k_anonymity'])}{l_text}; "
        f"{cert['records']['suppressed']:,} suppressed, "
        f"{cert['records']['objectors_excluded']:,} excluded on objection."
    )
    withheld = cert.get("withheld") or []
    if withheld:
        st.warning(
            "Generalised away entirely (every record shows `*`, so these columns carry no "
            f"information in this extract): {', '.join(withheld)}. Combined with what the "
            "project already holds, any finer level would single people out."
        )
    st.subheader("How each column is released")
    columns = cert.get("columns")
    if columns:
        st.table(
            [
                {
                    "Variable": c.get("variable", ""),
                    "Role": c.get("role", ""),
                    "Released as": c.get("treatment", ""),
                    "Who outside the council could know it": "; ".join(c.get("known_by") or [])
                    or "nobody",
                }
                for c in columns
            ]
        )
    else:
        st.table([{"Variable": q, "Released as": lvl} for q, lvl in cert["transformation"].items()])
    st.subheader("Disclosure-risk report")
    risk = achieved["reidentification"]
    st.table(
        [
            {"Measure": "k-anonymity (smallest class)", "Value": f"{int(achieved['k_anonymity'])}"},
            {
                "Measure": "Equivalence classes",
                "Value": f"{int(achieved['equivalence_classes']):,}",
            },
            {"Measure": "Average class size", "Value": f"{achieved['average_class_size']:.1f}"},
            {
                "Measure": "Highest re-identification risk (prosecutor)",
                "Value": f"{risk['prosecutor']['highest']:.1%}",
            },
            {
                "Measure": "Average re-identification risk (prosecutor)",
                "Value": f"{risk['prosecutor']['average']:.2%}",
            },
        ]
    )
    st.caption(f"SHA-256 of the data file: {cert['sha256']}")
    stem = files.data_name.rsplit(".", 1)[0]
    cols = st.columns(4)
    cols[0].download_button(
        "Extract (CSV)",
        data=downloads.extract_bytes(files, "data"),
        file_name=files.data_name,
        mime="text/csv",
        key="rx_dl_data",
    )
    cols[1].download_button(
        "Data dictionary (CSV)",
        data=downloads.extract_bytes(files, "dictionary"),
        file_name=f"{stem}.dictionary.csv",
        mime="text/csv",
        key="rx_dl_dictionary",
    )
    cols[2].download_button(
        "Certificate (text)",
        data=downloads.extract_bytes(files, "certificate_text"),
        file_name=f"{stem}.certificate.txt",
        mime="text/plain",
        key="rx_dl_cert_text",
    )
    cols[3].download_button(
        "Certificate (JSON)",
        data=downloads.extract_bytes(files, "certificate_json"),
        file_name=f"{stem}.certificate.json",
        mime="application/json",
        key="rx_dl_cert_json",
    )
