"""Sign-in, as the portal's web process sees it: the release service decides, this process
asks and remembers the session token.

- demo: only when the service runs in demo mode. One demo account per role, no password;
  every page says so.
- local: the user name and password go to the service, which checks them against its
  accounts file (argon2), counts failures in the store (lockout with back-off, across
  sessions and processes) and audits every attempt.
- oidc: `st.login(provider)` runs here (Streamlit's OpenID Connect flow; the client id and
  secret live in .streamlit/secrets.toml); the identity's claims go to the service over the
  service credential, and the service maps them to roles with its role map.

Whichever way, the service returns an opaque session token. It lives in this browser
session and in an HttpOnly, SameSite=Strict cookie (`portal.web.cookies`), so a reload or a
bookmarked page keeps the user signed in; the service ends the session after the
configured idle time. Every script run asks the service who the token belongs to.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import Any

import streamlit as st

from portal.web import cookies, data
from portal.web.access import User

SESSION_TOKEN = "portal_session_token"  # noqa: S105 - a session-state key
SESSION_DEAD = "portal_dead_token"
SESSION_ENDED = "portal_session_ended"
NEXT_PAGE = "portal_next_page"
NEXT_QUERY = "portal_next_query"  # the view asked for (a bookmark's or permalink's query)
# One `whoami` per token per this many seconds: app.py and the page checkpoint both ask
# within one script run. The service still refreshes the idle timer on every real call.
WHOAMI_SECONDS = 2.0

_whoami: dict[str, tuple[float, dict[str, Any] | None]] = {}
_whoami_lock = threading.Lock()


def _ask(token: str) -> dict[str, Any] | None:
    now = time.monotonic()
    with _whoami_lock:
        hit = _whoami.get(token)
        if hit is not None and now - hit[0] < WHOAMI_SECONDS:
            return hit[1]
    info = data.whoami(token)
    with _whoami_lock:
        if len(_whoami) > 10_000:
            _whoami.clear()
        _whoami[token] = (now, info)
    return info


def current_token() -> str | None:
    """This browser's session token (from this session, else the cookie), if any."""
    token = st.session_state.get(SESSION_TOKEN) or cookies.read()
    if token and token == st.session_state.get(SESSION_DEAD):
        return None
    return str(token) if token else None


def current_user(auth_config: data.AuthConfig) -> User | None:
    """The signed-in user, as the service knows them, or None."""
    token = current_token()
    if token:
        info = _ask(token)
        if info is not None:
            user = User.from_service(info)
            if user.method == auth_config.mode:
                st.session_state[SESSION_TOKEN] = token
                return user
        # The session has ended (idle, signed out elsewhere, or the service restarted in
        # another mode): forget it, and say so on the sign-in page.
        forget(token)
        st.session_state[SESSION_ENDED] = True
        if auth_config.mode == "oidc" and st.user.get("is_logged_in"):
            st.logout()  # make the identity provider sign the user in again
        return None
    if auth_config.mode == "oidc" and st.user.get("is_logged_in"):
        # Just back from the identity provider: the service opens a session for the claims.
        token, info = data.sign_in_oidc(st.user.to_dict())
        remember(token, next_path=None)
        return User.from_service(info)
    return None


def forget(token: str | None = None) -> None:
    token = token or st.session_state.get(SESSION_TOKEN)
    if token:
        st.session_state[SESSION_DEAD] = token
        with _whoami_lock:
            _whoami.pop(token, None)
    st.session_state.pop(SESSION_TOKEN, None)


def remember(token: str, *, next_path: str | None) -> None:
    """Keep a new session: in this browser session, and (when this process serves the cookie
    routes) in the browser's cookie, by way of a redirect to `next_path`."""
    st.session_state[SESSION_TOKEN] = token
    st.session_state.pop(SESSION_DEAD, None)
    st.session_state.pop(SESSION_ENDED, None)
    if next_path is not None and cookies.store_and_go(token, next_path):
        st.stop()


def next_path() -> str:
    """The page address the user asked for before signing in ("/" for the home page), with
    the view's query (measure, breakdowns, filters, release) so a bookmark or permalink
    opened while signed out lands on that same view."""
    key = st.session_state.get(NEXT_PAGE) or ""
    query = st.session_state.get(NEXT_QUERY) or ""
    return (f"/{key}" if key else "/") + (f"?{query}" if query else "")


def sign_in_demo(role: str) -> None:
    token, _ = data.sign_in_demo(role)
    remember(token, next_path=next_path())


def sign_in_local(username: str, password: str) -> None:
    """Raises data.SignInFailed (wrong name or password, locked) with a safe message."""
    token, _ = data.sign_in_local(username, password, client_address())
    remember(token, next_path=next_path())


def client_address() -> str | None:
    """The browser's address, which the service counts failed sign-ins by (with the
    account name), so that wrong passwords typed elsewhere do not lock this user out.
    Behind a reverse proxy this is the proxy's address unless Streamlit is told to trust
    its forwarded headers; then every user shares one count per account, as before."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no browser context (a script run, a test)
        return None
    return str(address)[:64] if address else None


def sign_out(auth_config: data.AuthConfig) -> None:
    token = st.session_state.get(SESSION_TOKEN)
    if token:
        data.sign_out(token)
    forget(token)
    for key in list(st.session_state.keys()):
        if key not in (SESSION_DEAD,):
            del st.session_state[key]
    oidc = auth_config.mode == "oidc" and bool(st.user.get("is_logged_in"))
    if cookies.clear_and_go(oidc=oidc):
        st.stop()
    if oidc:
        st.logout()


def oidc_available() -> bool:
    """st.login needs Authlib (the `streamlit[auth]` extra)."""
    return importlib.util.find_spec("authlib") is not None
