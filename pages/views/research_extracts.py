"""Research extracts (researchers): request a pseudonymised, k-anonymous record-level
extract, see its disclosure-risk report and release certificate, download it."""

from __future__ import annotations

import streamlit as st

from portal.web import data, downloads, ui

ctx = ui.page("research_extracts")
policy, catalogue, sensitive_names = ui.guarded(data.research_catalogue, ctx.role_key, ctx.token)
titles = {v.name: f"{v.title} ({v.name})" for v in catalogue}

st.markdown(
    "Build a **record-level extract** for an approved research project. Person and family "
    "pseudonyms are keyed for the project alone, people who objected are left out, and the "
    f"quasi-identifiers you choose are generalised until every combination is shared by at "
    f"least *k* people (policy {policy.ref}: k = {policy.k}, distinct l = {policy.l} on a "
    f"sensitive variable you name, at most {policy.suppression_limit:.0%} of records "
    "suppressed). Every extract and every refusal is written to the audit log."
)

with st.expander("The variable catalogue"):
    st.dataframe(
        [
            {
                "Variable": v.name,
                "Title": v.title,
                "Privacy role": v.role,
                "Definition": v.definition,
            }
            for v in catalogue
        ],
        hide_index=True,
        use_container_width=True,
    )

with st.form("extract_request"):
    project = st.text_input(
        "Project name", help="Keys the pseudonyms: use the approved project's name."
    )
    purpose = st.text_area("Purpose", help="What the extract is for; it goes on the certificate.")
    variables = st.multiselect(
        "Variables",
        options=list(titles),
        format_func=titles.__getitem__,
        default=["age", "sex", "lsoa", "eh_episodes"],
    )
    k = st.number_input("k (at least)", min_value=policy.min_k, value=policy.k, step=1)
    sensitive = st.selectbox(
        "Sensitive variable for l-diversity (optional)",
        options=["(none)", *sorted(sensitive_names)],
    )
    l_value = st.number_input("l (distinct values per class)", min_value=1, value=policy.l, step=1)
    submitted = st.form_submit_button("Build extract", type="primary")

if submitted:
    request = data.ExtractRequest(
        project=project.strip(),
        purpose=purpose.strip(),
        variables=tuple(variables),
        k=int(k),
        l=int(l_value) if sensitive != "(none)" else None,
        sensitive=None if sensitive == "(none)" else sensitive,
    )
    try:
        with st.spinner("Generalising and checking the extract"):
            files = ui.guarded(data.build_research_extract, ctx.role_key, ctx.token, request)
    except data.ExtractRefused as refused:
        st.error("**The extract was refused.** " + " ".join(refused.reasons))
        if refused.suggestions:
            st.markdown("**What would pass:**\n" + "\n".join(f"- {s}" for s in refused.suggestions))
        st.stop()
    cert = files.certificate
    achieved = cert["achieved"]
    st.success(
        f"Extract built: {cert['records']['released']:,} records, k = {achieved['k_anonymity']}"
        + (
            f", distinct l = {achieved['l_diversity_distinct']}"
            if achieved.get("l_diversity_distinct")
            else ""
        )
        + f"; {cert['records']['suppressed']:,} suppressed, "
        + f"{cert['records']['objectors_excluded']:,} excluded on objection."
    )
    st.subheader("How the quasi-identifiers are released")
    st.table([{"Variable": q, "Released as": level} for q, level in cert["transformation"].items()])
    st.subheader("Disclosure-risk report")
    risk = achieved["reidentification"]
    st.table(
        [
            {"Measure": "k-anonymity (smallest class)", "Value": achieved["k_anonymity"]},
            {"Measure": "Equivalence classes", "Value": achieved["equivalence_classes"]},
            {"Measure": "Average class size", "Value": round(achieved["average_class_size"], 1)},
            {
                "Measure": "Highest prosecutor risk",
                "Value": round(risk["prosecutor"]["highest"], 3),
            },
            {
                "Measure": "Average prosecutor risk",
                "Value": round(risk["prosecutor"]["average"], 4),
            },
            {
                "Measure": "Information loss (Iyengar)",
                "Value": round(cert["information_loss"]["loss"], 4),
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
    )
    cols[1].download_button(
        "Data dictionary (CSV)",
        data=downloads.extract_bytes(files, "dictionary"),
        file_name=f"{stem}.dictionary.csv",
        mime="text/csv",
    )
    cols[2].download_button(
        "Certificate (text)",
        data=downloads.extract_bytes(files, "certificate_text"),
        file_name=f"{stem}.certificate.txt",
        mime="text/plain",
    )
    cols[3].download_button(
        "Certificate (JSON)",
        data=downloads.extract_bytes(files, "certificate_json"),
        file_name=f"{stem}.certificate.json",
        mime="application/json",
    )
