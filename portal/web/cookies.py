"""The session cookie: how a signed-in user stays signed in across a reload or a bookmark.

The service issues an opaque session token at sign-in. The browser keeps it in a cookie
that page scripts cannot read (HttpOnly) and no other site can send (SameSite=Strict):

1. the sign-in page gets the token from the service and puts it here under a one-time
   code (random, 60 seconds, used once);
2. the page sends the browser to `/session/complete?code=...&next=/<page>`, a route of this
   process (`portal_web.py`), which swaps the code for the token, sets the cookie and
   redirects to the page the user asked for;
3. every script run reads the cookie (`st.context.cookies`) and asks the service whether
   the session is still live (the service enforces the idle timeout).

Signing out revokes the session at the service, then `/session/end` clears the cookie
(and, after an OpenID Connect sign-in, hands over to Streamlit's `/auth/logout`).
When the app runs without those routes (`streamlit run app.py`, or AppTest), the token is
kept in the browser session only, as before.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from urllib.parse import quote

import streamlit as st

COOKIE_NAME = "portal_session"
COMPLETE_PATH = "/session/complete"
SIGN_OUT_PATH = "/session/end"
# Streamlit's own route that ends an OpenID Connect sign-in (and the provider's session).
OIDC_LOGOUT_PATH = "/auth/logout"
CODE_SECONDS = 60.0
# A page of this app, optionally with a view's query (portal.web.permalink writes it with
# urlencode, so only these characters): never another site.
_SAFE_NEXT = re.compile(r"^/[a-z0-9_]*(\?[A-Za-z0-9_.~%+=&-]{0,2000})?$")

# Set by portal_web.py when the cookie routes are mounted in this process.
ROUTES_ACTIVE = False

_codes: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


def put(token: str) -> str:
    """A one-time code for `token`, valid for CODE_SECONDS."""
    code = secrets.token_urlsafe(32)
    now = time.monotonic()
    with _lock:
        for stale in [c for c, (_, at) in _codes.items() if now - at > CODE_SECONDS]:
            del _codes[stale]
        _codes[code] = (token, now)
    return code


def take(code: str) -> str | None:
    """The token behind a code, once; None if unknown, used or expired."""
    with _lock:
        entry = _codes.pop(code, None)
    if entry is None or time.monotonic() - entry[1] > CODE_SECONDS:
        return None
    return entry[0]


def safe_next(path: str | None) -> str:
    """Only a page address of this app, with its view's query if any (no open redirect to
    another site)."""
    return path if path and _SAFE_NEXT.match(path) else "/"


def read() -> str | None:
    """The session token from the browser's cookie, if it sent one."""
    try:
        value = st.context.cookies.get(COOKIE_NAME)
    except Exception:  # no browser behind this run (bare mode, some tests)
        return None
    return value if isinstance(value, str) and value else None


def _go(url: str) -> None:
    # A location change in the browser; the URL holds only our own path and a code.
    st.html(
        f"<script>window.location.replace({url!r});</script>",
        unsafe_allow_javascript=True,
    )


def store_and_go(token: str, next_path: str) -> bool:
    """Hand the token to the cookie route and send the browser there. False when the
    routes are not mounted (the token then lives in this browser session only)."""
    if not ROUTES_ACTIVE:
        return False
    target = quote(safe_next(next_path), safe="/")
    _go(f"{COMPLETE_PATH}?code={put(token)}&next={target}")
    return True


def clear_and_go(*, oidc: bool) -> bool:
    """Send the browser to the route that deletes the cookie (False without routes)."""
    if not ROUTES_ACTIVE:
        return False
    _go(SIGN_OUT_PATH + ("?oidc=1" if oidc else ""))
    return True
