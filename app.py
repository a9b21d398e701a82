"""The Streamlit portal. Pages hold widgets only; every number comes from the
release layer (anonymise/release.py), already protected."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Children's services research and statistics portal", layout="wide")


def home() -> None:
    st.title("Children's services research and statistics portal")
    st.write(
        "Anonymised statistics on Early Help and children's social care for planners, "
        "researchers and leadership. No individual is identified in anything shown here."
    )
    st.info(
        "The portal pages are being built. Available now: the synthetic county "
        "(`portal synth`). Not built yet: the pipeline (`portal run`), published "
        "statistics and the research extract pages."
    )


st.navigation([st.Page(home, title="Home", default=True)]).run()
