"""The charts' own margins hold their labels, so plotly.js draws each chart once.

With the template's automargin, a chart whose margins are too small for its tick labels,
axis titles or legend is measured and then drawn again from scratch; `charts._margins`
sizes the margins from the labels so that the second pass does not happen. Here plotly.js
(the copy shipped with the plotly package: no network) draws typical portal charts in
headless Chromium at three widths, and the margins it ends up with must be exactly the
spec's: had any label needed more room, automargin would have pushed a margin out (and
drawn the chart twice)."""

from __future__ import annotations

import json
from pathlib import Path

import plotly
import polars as pl
import pytest

from portal.web import charts
from tests.portal_processes import BROWSER_ARGS, CHROMIUM, require_browser

pytestmark = [pytest.mark.browser]

sync_api = require_browser()
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

QUARTERS = [f"{y}/{str(y + 1)[2:]} Q{q}" for y in range(2021, 2026) for q in range(1, 5)]
MONTHS = [f"{m} {y}" for y in range(2021, 2026) for m in ("Apr", "May", "Jun", "Jul", "Aug",
          "Sep", "Oct", "Nov", "Dec", "Jan", "Feb", "Mar")]  # fmt: skip
LOCALITIES = [f"Locality {i}" for i in range(10)]
WARDS = [f"Brackenford and Upper Ashby {i}" for i in range(20)]


def _specs() -> dict[str, charts.Spec]:
    one = pl.DataFrame(
        {
            "q": QUARTERS,
            "v": [float(i * 7 % 50 + 100) for i in range(20)],
            "_c": [i == 3 for i in range(20)],
        }
    )
    many = pl.DataFrame(
        {
            "q": QUARTERS * 10,
            "g": [loc for loc in LOCALITIES for _ in QUARTERS],
            "v": [float(i * 13 % 70 + 10) for i in range(200)],
            "_c": [i % 17 == 0 for i in range(200)],
        }
    )
    months = pl.DataFrame({"m": MONTHS, "v": [float(1000 + i * 37 % 9000) for i in range(60)]})
    bars = pl.DataFrame(
        {
            "loc": LOCALITIES[:9],
            "v": [float(100 + j * 5) for j in range(9)],
            "_c": [j == 4 for j in range(9)],
        }
    )
    wards = pl.DataFrame(
        {"w": WARDS, "v": [float(30 + j) for j in range(20)], "_c": [j == 2 for j in range(20)]}
    )
    rate = {"x_title": "Quarter", "y_title": "Rate per 10,000"}
    return {
        "quarterly, one line, a suppressed point": charts.line_figure(one, "q", "v", flag="_c", **rate),
        "quarterly, ten lines": charts.line_figure(many, "q", "v", series="g", flag="_c", **rate),
        "monthly, thousands": charts.line_figure(months, "m", "v", x_title="Month", y_title="Number of contacts"),
        "percentage by quarter": charts.line_figure(one, "q", "v", percent=True, y_title="Percentage"),
        "bars by locality": charts.bar_figure(bars, "loc", "v", x_title="Locality", y_title="Number", flag="_c"),
        "horizontal bars, long ward names": charts.bar_figure(
            wards, "w", "v", x_title="Ward", y_title="Percentage", horizontal=True, percent=True, flag="_c"
        ),
        "grouped bars": charts.bar_figure(many.filter(pl.col("q").str.ends_with("Q1")), "q", "v",
                                          series="g", x_title="Quarter", y_title="Number"),
    }  # fmt: skip


@pytest.mark.parametrize("width", [1300, 1000, 700])
def test_each_chart_is_drawn_once_with_the_margins_it_asked_for(width):
    specs = _specs()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.set_content(f"<html><body><div id='g' style='width:{width}px'></div></body></html>")
        page.add_script_tag(path=str(PLOTLY_JS))
        pushed = {}
        for name, spec in specs.items():
            drawn = page.evaluate(
                """async (text) => {
                  const g = document.getElementById('g');
                  Plotly.purge(g);
                  const s = JSON.parse(text);
                  await Plotly.newPlot(g, s.data, s.layout, {displaylogo: false});
                  const size = g._fullLayout._size;
                  return {l: size.l, r: size.r, t: size.t, b: size.b,
                          traces: g.querySelectorAll('g.trace').length};
                }""",
                json.dumps(spec),
            )
            assert drawn["traces"] >= 1, f"{name}: not drawn"
            asked = spec["layout"]["margin"]
            if any(round(drawn[k]) != asked[k] for k in "lrtb"):
                pushed[name] = (asked, {k: round(drawn[k]) for k in "lrtb"})
        browser.close()
    assert not pushed, f"at {width} px, labels needed more room than the spec gave: {pushed}"
