"""Start the portal's web process, as `portal up` does: `python -m portal.web.boot run
portal_web.py --server...` is `streamlit run portal_web.py --server...`.

With $PORTAL_AUDIT_OPENS naming a file, an audit hook is installed before anything else is
imported. It records, one per line, every file this process opens, every folder it lists,
every SQLite database it connects to, and every import of a module that could reach data;
polars' file readers (which open files in Rust, past Python's audit events) are wrapped to
record their paths too. tests/test_process_boundary.py reads it to prove that the web
process never opened the store or the work folders; open file descriptors alone would only
show "not open now".
"""

from __future__ import annotations

import os
import sys
from typing import Any

AUDIT_ENV = "PORTAL_AUDIT_OPENS"
# Top-level packages the web process must never import.
WATCHED = ("anonymise", "pipelines", "synthetic", "sqlalchemy", "psycopg", "duckdb", "splink")


def record_opens(path: str) -> None:
    log = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process

    def hook(event: str, args: tuple[object, ...]) -> None:
        try:
            if event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
                log.write(f"open\t{os.fsdecode(args[0])}\n")
            elif event in ("os.listdir", "os.scandir") and args:
                target = args[0]
                if isinstance(target, str | bytes | os.PathLike):
                    log.write(f"{event}\t{os.fsdecode(target)}\n")
            elif event == "sqlite3.connect" and args:
                log.write(f"sqlite3.connect\t{args[0]!s}\n")
            elif event == "import" and args and str(args[0]).split(".")[0] in WATCHED:
                log.write(f"import\t{args[0]}\n")
        except Exception:  # noqa: S110 - a hook must never break the process it watches
            pass

    sys.addaudithook(hook)
    _record_polars_reads(log)


def _record_polars_reads(log: Any) -> None:
    import polars as pl

    def wrap(name: str) -> None:
        real = getattr(pl, name)

        def reader(source: Any = None, *args: Any, **kwargs: Any) -> Any:
            if isinstance(source, str | bytes | os.PathLike):
                log.write(f"polars.{name}\t{os.fsdecode(source)}\n")
            return real(source, *args, **kwargs)

        setattr(pl, name, reader)

    for name in dir(pl):
        if name.startswith(("read_", "scan_")) and callable(getattr(pl, name)):
            wrap(name)


def main() -> None:
    from registry.settings import WebSettings

    audit = WebSettings.load().audit_opens
    if audit:
        record_opens(str(audit))
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web.cli import main as streamlit_main

    # The page scripts live in pages/views/ and app.py registers them with st.navigation.
    # Streamlit guesses the old pages-folder mode from pages/ existing until a first run has
    # called st.navigation, so on a fresh server the first visitor to a page address (a
    # bookmark, a permalink) got "Page not found". Say which mode this is from the start.
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", *sys.argv[1:]]
    streamlit_main(prog_name="streamlit")


if __name__ == "__main__":
    main()
