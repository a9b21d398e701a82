"""Sign in: demo accounts (demo mode only), a local account, or the council's identity
provider (OpenID Connect)."""

from __future__ import annotations

import streamlit as st

from portal.web import auth, ui
from portal.web.access import PAGES, ROLE_TITLES

config = ui.config_or_stop()
st.title("Children's services research and statistics portal")
st.write(
    "Anonymised statistics on Early Help and children's social care for planners, "
    "researchers and leadership. No individual is identified in anything published here."
)

if config.auth_mode == "demo":
    st.warning(ui.DEMO_NOTICE, icon=":material/science:")
    st.header("Sign in with a demo account")
    st.write("Each demo account has one role and sees only the pages for that role.")
    for role in auth.DEMO_ACCOUNTS:
        pages = ", ".join(p.title for p in PAGES if role in p.roles)
        left, right = st.columns([1, 3], vertical_alignment="center")
        if left.button(
            f"Sign in as demo {ROLE_TITLES[role].lower()}",
            key=f"demo_{role}",
            icon=":material/login:",
            width="stretch",
        ):
            auth.sign_in(auth.demo_user(config, role))
            st.rerun()
        right.caption(f"Pages: {pages}")

elif config.auth_mode == "local":
    st.header("Sign in")
    try:
        accounts = auth.load_accounts(config)
    except auth.AccountsError as exc:
        st.error(f"Sign-in is not available: the accounts are not configured ({exc}).")
        st.stop()
    wait = auth.locked_out()
    with st.form("sign_in"):
        username = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", disabled=wait > 0)
    if wait > 0:
        st.error(f"Too many failed attempts. Try again in {wait:.0f} seconds.")
    elif submitted:
        user = auth.check_local(accounts, username, password)
        if user is None:
            auth.record_failure()
            st.error("The user name or password is not right.")
            if auth.locked_out():
                st.error(f"Too many failed attempts. Try again in {auth.LOCKOUT_SECONDS} seconds.")
        else:
            auth.sign_in(user)
            st.rerun()

elif config.auth_mode == "oidc":
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
        if config.oidc_provider:
            st.login(config.oidc_provider)
        else:
            st.login()

else:
    st.error(
        "Sign-in is not configured, so nobody can use this portal yet. An administrator "
        "sets PORTAL_CONFIG (OpenID Connect or local accounts) or PORTAL_DEMO=1 for the "
        "demo. See docs/portal.md."
    )
