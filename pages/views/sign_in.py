"""Sign in: demo accounts (demo mode only), a local account, or the council's identity
provider (OpenID Connect). The release service checks every attempt."""

from __future__ import annotations

import streamlit as st

from portal.web import auth, data, ui
from portal.web.access import PAGES, ROLE_TITLES

config = ui.config_or_stop()
auth_config = ui.service_or_stop(config)
st.title("Children's services research and statistics portal")
st.write(
    "Anonymised statistics on Early Help and children's social care for planners, "
    "researchers and leadership. No individual is identified in anything published here."
)
if st.session_state.pop(auth.SESSION_ENDED, False):
    st.info("Your session has ended. Please sign in again.", icon=":material/schedule:")
if auth.next_path() != "/":
    st.caption("Sign in to open the page you asked for.")

if auth_config.mode == "demo":
    st.warning(ui.DEMO_NOTICE, icon=":material/science:")
    st.header("Sign in with a demo account")
    st.write("Each demo account has one role and sees only the pages for that role.")
    for role in auth_config.demo_roles:
        pages = ", ".join(p.title for p in PAGES if role in p.roles)
        left, right = st.columns([1, 3], vertical_alignment="center")
        if left.button(
            f"Sign in as demo {ROLE_TITLES[role].lower()}",
            key=f"demo_{role}",
            icon=":material/login:",
            width="stretch",
        ):
            auth.sign_in_demo(role)
            st.rerun()
        right.caption(f"Pages: {pages}")

elif auth_config.mode == "local":
    st.header("Sign in")
    with st.form("sign_in"):
        username = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            auth.sign_in_local(username, password)
        except data.SignInFailed as failed:
            st.error(f"Sign-in failed: {failed}.")
            if failed.locked_for:
                st.error(f"Too many failed attempts. Try again in {failed.locked_for:.0f} seconds.")
        else:
            st.rerun()

elif auth_config.mode == "oidc":
    st.header("Sign in with your council account")
    st.write("You will be sent to the council's sign-in page and brought back here.")
    if not auth.oidc_available():
        st.error(
            "Sign-in with the council's identity provider needs the Authlib package "
            "(`pip install 'streamlit[auth]'`). Ask an administrator to install it."
        )
    if st.button(
        "Sign in",
        icon=":material/login:",
        key="oidc_sign_in",
        type="primary",
        disabled=not auth.oidc_available(),
    ):
        if auth_config.oidc_provider:
            st.login(auth_config.oidc_provider)
        else:
            st.login()

else:
    st.error(
        "Sign-in is not configured, so nobody can use this portal yet. An administrator "
        "configures the release service (PORTAL_CONFIG: OpenID Connect or local accounts), "
        "or starts the demo with `portal up --demo`. See docs/portal.md."
    )
