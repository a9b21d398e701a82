"""The portal's web process: Streamlit serving app.py, plus the two routes that keep the
session cookie (see portal/web/cookies.py). `portal up` runs it (`streamlit run
portal_web.py`); it holds no key, no secret, no store and no work folder.

- /session/complete?code=...&next=/<page>: swaps a one-time code for the session token,
  sets it as an HttpOnly, SameSite=Strict cookie, and redirects to the page;
- /session/end: deletes the cookie (the session was already revoked at the service) and
  redirects home, or to Streamlit's /auth/logout after an OpenID Connect sign-in.
"""

from __future__ import annotations

import streamlit as st
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.web import cookies

cookies.ROUTES_ACTIVE = True


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


async def complete(request: Request) -> Response:
    token = cookies.take(request.query_params.get("code", ""))
    response = RedirectResponse(cookies.safe_next(request.query_params.get("next")), 303)
    response.headers["Cache-Control"] = "no-store"
    if token:
        response.set_cookie(
            cookies.COOKIE_NAME,
            token,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/",
        )
    return response


async def end(request: Request) -> Response:
    oidc = request.query_params.get("oidc") == "1"
    response = RedirectResponse(cookies.OIDC_LOGOUT_PATH if oidc else "/", 303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(
        cookies.COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


app = st.App(
    "app.py",
    routes=[Route(cookies.COMPLETE_PATH, complete), Route(cookies.SIGN_OUT_PATH, end)],
)
