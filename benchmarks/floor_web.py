"""The floor page's web process: Streamlit serving benchmarks/floor_page.py, with the
charts' plotly.js served from the plotly package as the portal's own web process does
(portal_web.py)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

from portal.web import plot


def plotly_js(request: Request) -> FileResponse:
    return FileResponse(
        plot.PLOTLY_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


app = st.App(
    str(Path(__file__).with_name("floor_page.py")), routes=[Route(plot.PLOTLY_URL, plotly_js)]
)
