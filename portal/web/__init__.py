"""The Streamlit portal's support code: configuration, sign-in and roles, the one cached
door to protected tables, chart and download helpers.

`app.py` and `pages/` import from here and from nothing that can reach zone A or B
(tests/test_app_architecture.py proves it):

- `config`: settings from the environment and the TOML file named by $PORTAL_CONFIG;
- `access`: roles and the page registry (deny by default);
- `auth`: demo accounts, local accounts with scrypt hashes, OpenID Connect claims;
- `data`: every number a page shows, as a protected table, cached per role and release;
- `charts`, `downloads`, `headlines`: pure helpers (figures, files, sentences);
- `ui`: the page checkpoint and the widgets every page shares.
"""
