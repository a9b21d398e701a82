// The portal's chart: plotly.js drawing a spec the page built, updated in place.
//
// Streamlit calls this function when the chart first mounts and again, with the same
// parentElement, whenever the page sends it a new spec. Plotly.react then diffs the new
// spec against the drawn one and redraws only what changed, where st.plotly_chart would
// unmount the chart and draw it from scratch (its element id contains the spec).
// plotly.js is the copy shipped with the plotly package, served by the portal itself
// (PLOTLY_URL below is replaced by portal/web/plot.py): no outside calls.

const PLOTLY_URL = "__PLOTLY_URL__";

function plotly() {
  if (!window.__portalPlotly) {
    window.__portalPlotly = new Promise((resolve, reject) => {
      if (window.Plotly) {
        resolve(window.Plotly);
        return;
      }
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        // Let the next chart try again rather than keep a failed load.
        window.__portalPlotly = null;
        reject(new Error(`could not load ${PLOTLY_URL}`));
      };
      document.head.appendChild(script);
    });
  }
  return window.__portalPlotly;
}

export default function ({ parentElement, data }) {
  let box = parentElement.querySelector('[data-testid="portalChart"]');
  if (!box) {
    box = document.createElement("div");
    box.className = "portalChart";
    box.setAttribute("data-testid", "portalChart");
    box.setAttribute("role", "figure");
    parentElement.appendChild(box);
  }
  box.setAttribute("aria-label", data.alt);
  // Streamlit hands the component a fresh object on every run of the page; an unchanged
  // spec needs no drawing at all.
  if (box.__figure !== data.figure || box.__config !== data.config) {
    box.__figure = data.figure;
    box.__config = data.config;
    // "drawing" until plotly.js has drawn this spec: the browser tests and the benchmark
    // wait for no chart to be drawing, so a page only counts as settled once every chart
    // shows the figures the page sent.
    const run = (box.__run || 0) + 1;
    box.__run = run;
    box.setAttribute("data-state", "drawing");
    const figure = JSON.parse(data.figure);
    const config = JSON.parse(data.config);
    plotly()
      .then((Plotly) => Plotly.react(box, figure.data, figure.layout, config))
      .then(() => {
        if (box.__run === run) box.setAttribute("data-state", "drawn");
      })
      .catch((error) => {
        box.setAttribute("data-state", "failed");
        box.textContent = `The chart could not be drawn (${error.message}); the table below holds its figures.`;
      });
  }
  // Streamlit calls the last cleanup when the chart leaves the page (and at once for a
  // run superseded while loading, when the box is still on the page: keep it then).
  return () => {
    setTimeout(() => {
      if (!box.isConnected && window.Plotly) window.Plotly.purge(box);
    }, 0);
  };
}
