"""A chart that a filter change updates in place.

`st.plotly_chart` (Streamlit 1.67) puts the figure's spec into the chart's element id, so
every filter change unmounts each changed chart and plotly.js draws it from scratch
(layout, SVG, the lot). This chart is a Streamlit custom component (`st.components.v2`,
drawn in the page itself, no iframe) whose identity is its key alone: when the page sends
a new spec, `plot.js` calls `Plotly.react` on the chart already drawn, and plotly.js
redraws only what changed.

What it draws is exactly the spec the page built from protected tables, serialised as
`st.plotly_chart` serialises it (`plotly.io.to_json`). plotly.js is the copy inside the
plotly package, served by the portal's own web process at `PLOTLY_URL` (portal_web.py):
nothing is fetched from outside. Like `st.plotly_chart(alt=...)`, the chart is a figure
labelled with its alt text; the page keeps the table and description beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly
import plotly.io as pio
import streamlit.components.v2 as components

# The plotly.js that matches the plotly package that built the specs. The version is in
# the address so a browser may keep it for good and a new version is fetched afresh.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_URL = f"/portal-assets/plotly-{plotly.__version__}.min.js"
# The mode bar keeps zoom, pan and the PNG download; box and lasso selection select nothing.
CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
    "responsive": True,
}
# plotly.js's own default height, stated: the component's box takes its height from the
# chart, so a chart without a height must not ask the box for one.
DEFAULT_HEIGHT = 450


def _script() -> str:
    return (
        Path(__file__)
        .with_name("plot.js")
        .read_text(encoding="utf-8")
        .replace("__PLOTLY_URL__", PLOTLY_URL)
    )


_chart = components.component("portal.chart", js=_script(), isolate_styles=False)


def payload(spec: Any, alt: str) -> dict[str, str]:
    """What the component receives: the spec as JSON text (dates and numbers encoded by
    plotly's own encoder, as `st.plotly_chart` does), the plotly.js config and the alt
    text."""
    figure = spec if isinstance(spec, dict) else spec.to_dict()
    layout = figure.get("layout", {})
    if "height" not in layout:
        figure = {**figure, "layout": {**layout, "height": DEFAULT_HEIGHT}}
    return {
        "figure": pio.to_json(figure, validate=False),
        "config": json.dumps(CONFIG),
        "alt": alt,
    }


def chart(spec: Any, *, key: str, alt: str) -> None:
    """Draw `spec` (a spec from `portal.web.charts` or a plotly figure) under `key`; the
    same key on the next run updates the drawn chart instead of replacing it."""
    _chart(key=key, data=payload(spec, alt), width="stretch", height="content")
