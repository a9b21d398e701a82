"""Research extracts (researchers): what the extract builder will do. The builder
itself (anonymise/extract.py) is not there yet, so this page imports nothing of it."""

from __future__ import annotations

import streamlit as st

from portal.web import ui

ctx = ui.page("research_extracts")
policy = ctx.policy

st.info(
    "**Not available yet.** The research extract builder is being written. Until it is "
    f"ready, ask {ctx.config.contact} for an extract, or use the table builder for "
    "protected aggregate tables.",
    icon=":material/construction:",
)

st.header("What this page will do")
st.markdown(
    """
For a research project that the council has approved, this page will build a
**record-level, pseudonymised extract** from the linked data, and only after it
passes every check:

1. **Approved projects only.** You choose one of your approved projects; its
   approval sets which variables and which period the extract may hold.
2. **Per-project pseudonyms.** Every person and family gets a pseudonym made
   with a key derived for that project alone, so two extracts (for two projects)
   cannot be joined to each other or to anything else.
3. **No direct identifiers.** Names, dates of birth, addresses, postcodes, NHS,
   National Insurance and pupil numbers never leave the linked data. Dates become
   months, quarters or years; ages become age bands; addresses become localities.
4. **k-anonymity proved before release.** Every combination of the extract's
   quasi-identifiers is shared by at least *k* people; rarer combinations are
   generalised (for example ward to locality) or suppressed, and the extract
   reports how much was changed.
5. **Objections respected.** People on the objections register are never in an
   extract.
6. **Audited.** Every extract, with its project, variables, checks and who asked
   for it, is written to the audit log.
"""
)
st.caption(
    f"Published tables on this portal follow disclosure control policy {policy.ref}; "
    "extracts will follow the project's data sharing agreement as well."
)
