"""The portal's web process: Streamlit serving app.py, plus the two routes that keep the
session cookie (see portal/web/cookies.py). `portal up` runs it (`streamlit run
portal_web.py`); it holds no key, no secret, no store and no work folder.

- /session/complete?code=...&next=/<page>: swaps a one-time code for the session token,
  sets it as an HttpOnly, SameSite=Strict cookie, and redirects to the page;
- /session/end: deletes the cookie (the session was already revoked at the service) and
  redirects home, or to Streamlit's /auth/logout after an OpenID Connect sign-in.

- /portal-assets/plotly-<version>.min.js: the charts' plotly.js, from the plotly package
  (portal/web/plot.py), so that no page calls out to the internet.

The two session routes answer only a navigation started by this site's own pages
(Sec-Fetch-Site, else the Referer), so another site cannot sign a visitor in to its own
session or out of theirs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from portal.web import cookies, plot

HOME = "/"

cookies.ROUTES_ACTIVE = True


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _same_site(request: Request) -> bool:
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    referer = request.headers.get("referer", "")
    return bool(referer) and urlsplit(referer).netloc == request.headers.get("host")


async def complete(request: Request) -> Response:
    if not _same_site(request):
        return RedirectResponse(HOME, 303)
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
    if not _same_site(request):
        return RedirectResponse(HOME, 303)
    oidc = request.query_params.get("oidc") == "1"
    response = RedirectResponse(cookies.OIDC_LOGOUT_PATH if oidc else "/", 303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(
        cookies.COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


async def plotly_js(request: Request) -> Response:
    # The charts' plotly.js, from the plotly package: the portal makes no outside calls. The
    # version is in the address, so the browser may keep this copy for good.
    return FileResponse(
        plot.PLOTLY_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


app = st.App(
    "app.py",
    routes=[
        Route(cookies.COMPLETE_PATH, complete),
        Route(cookies.SIGN_OUT_PATH, end),
        Route(plot.PLOTLY_URL, plotly_js),
    ],
)
