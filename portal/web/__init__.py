"""The Streamlit portal's support code: a client of the release service.

`app.py` and `pages/` import from here, and this package imports nothing but the standard
library, streamlit, polars, plotly and httpx: no key, no secret, no store, no work folder
and no disclosure-control code can be reached from the web process
(tests/test_app_architecture.py proves it statically, tests/test_process_boundary.py on
the running process):

- `config`: the service URL and credential from the environment; demo refused under a
  production configuration;
- `access`: roles and the page registry (deny by default);
- `auth`, `cookies`: sign-in through the service and the session cookie;
- `data`: every number a page shows, from the service's API, cached per role and release;
- `charts`, `downloads`, `headlines`: pure helpers (plotly specs, files, sentences);
- `checkpoint`: the permission checkpoint every page passes first (`page`, `PageContext`);
- `widgets`, `sections`: the blocks, chart sections, tiles and report pages draw with;
- `ui`: the one name pages import, gathering the checkpoint and the widgets;
- `boot`: starts this process (`portal up`), optionally recording every file it opens.
"""
