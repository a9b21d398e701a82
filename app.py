"""The Streamlit portal: navigation built from the signed-in user's roles.

Only the pages the user's roles may see are registered with st.navigation, so any
other page cannot be reached, not even by URL (deny by default: no user, no role or
an unknown page gives nothing but the sign-in or no-access page). Pages hold widgets
only; every number comes from the release layer through portal.web.data, already
protected. Run with `make run` (demo) or `streamlit run app.py`.
"""

from __future__ import annotations

import streamlit as st

from portal.web import access, auth, ui

st.set_page_config(
    page_title="Children's services research and statistics portal",
    page_icon=":material/bar_chart:",
    layout="wide",
)

config = ui.config_or_stop()
user = auth.current_user(config)

if user is None:
    pages = [
        st.Page("pages/views/sign_in.py", title="Sign in", icon=":material/login:", default=True)
    ]
elif not user.roles:
    pages = [st.Page(ui.no_access, title="No access", icon=":material/block:", default=True)]
else:
    pages = [
        st.Page(p.path, title=p.title, icon=p.icon, url_path=p.key, default=p.key == "home")
        for p in access.visible_pages(user)
    ]

# A flat list: sectioned navigation gave serious axe violations in the sidebar.
navigation = st.navigation(pages, position="sidebar")

with st.sidebar:
    if config.demo:
        st.caption("Demo mode: synthetic data, demo accounts.")
    if user is not None:
        st.caption(f"Signed in as **{user.name}** ({user.role_label})")
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            auth.sign_out(config)
            st.rerun()

navigation.run()
