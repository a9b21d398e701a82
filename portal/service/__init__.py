"""The release service: the only process that holds the disclosure-control secret, the
pseudonymisation key, the store and the pipeline's work folder.

`portal serve` runs it (FastAPI on uvicorn); the Streamlit portal and any other client
(R, Power BI, `portal table --service`) reach published numbers only through its
versioned API (`/v1/...`, documented at `/docs`):

- `config`: settings from the environment, $PORTAL_CONFIG and the command line; demo
  mode refused under a production configuration; the service credential;
- `accounts`: local accounts, argon2 hashes (legacy scrypt/pbkdf2 still verify);
- `signin`: sessions, lockout with back-off, the audit of every sign-in event;
- `admin`: the administrators' figures from the pipeline's aggregate files;
- `app`: the HTTP API and its permission checks (deny by default).
"""
