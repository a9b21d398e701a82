"""The Streamlit portal: navigation built from the signed-in user's roles.

Only the pages the user's roles may see are registered with st.navigation as pages
(deny by default: no user, no role or an unknown page gives nothing but the sign-in or
no-access page). Every other known page's address answers with "no access" for a
signed-in user, and with the sign-in page for someone signed out, who then lands on that
page once signed in; an unknown address says "page not found". Nobody is signed out by
any of these. Pages hold widgets only; every number comes from the release service
through portal.web.data, already protected. Run with `make run` (demo: `portal up
--demo` starts the service and this portal) or `portal up`.
"""

from __future__ import annotations

import streamlit as st

from portal.web import access, auth, permalink, ui

st.set_page_config(
    page_title="Children's services research and statistics portal",
    # A file shipped with the portal, served by this server: a Material icon here would be
    # fetched from an outside font server on every page.
    page_icon=ui.ICON,
    layout="wide",
)

config = ui.config_or_stop()
auth_config = ui.service_or_stop(config)
user = auth.current_user(auth_config)
SIGN_IN = "pages/views/sign_in.py"

if user is None:
    pages = [st.Page(SIGN_IN, title="Sign in", icon=":material/login:", default=True)]
    # A bookmarked page opened while signed out: the sign-in page answers at that page's
    # address, and the page itself opens once the user has signed in. (Home is "/".)
    pages += [
        st.Page(SIGN_IN, title=p.title, url_path=p.key, visibility="hidden")
        for p in access.PAGES
        if p.key != "home"
    ]
elif not user.roles:
    pages = [st.Page(ui.no_access, title="No access", icon=":material/block:", default=True)]
else:
    visible = access.visible_pages(user)
    pages = [
        st.Page(p.path, title=p.title, icon=p.icon, url_path=p.key, default=p.key == "home")
        for p in visible
    ]
    pages += [
        st.Page(ui.not_your_page(p), title=p.title, url_path=p.key, visibility="hidden")
        for p in access.PAGES
        if p not in visible
    ]

# A flat list: sectioned navigation gave serious axe violations in the sidebar.
navigation = st.navigation(pages, position="sidebar")
if user is None:
    # Remember the page and view asked for, so signing in lands on exactly that view.
    st.session_state[auth.NEXT_PAGE] = navigation.url_path
    st.session_state[auth.NEXT_QUERY] = permalink.query(ui.url_params())

with st.sidebar:
    if config.demo:
        st.caption("Demo mode: synthetic data, demo accounts.")
    if user is not None:
        st.caption(f"Signed in as **{user.name}** ({user.role_label})")
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            auth.sign_out(auth_config)
            st.rerun()

navigation.run()
