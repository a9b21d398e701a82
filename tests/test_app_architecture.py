"""No page can reach unprotected data, statically: app.py, pages/, the portal's web package and
the web process's entry (portal_web.py), parsed with `ast`, never imported.

The web process is a client of the release service. The rules:
- each file imports only from an allow-list: the standard library, streamlit, polars,
  plotly, httpx, portal.web and registry.settings (pages: only streamlit, polars and portal.web; the entry
  also starlette for its two cookie routes). Nothing from anonymise, pipelines, synthetic,
  the service or the CLI, and no SQL driver, DuckDB, Splink, pandas or pyarrow;
- no `tabulate`, no cell key code, no store engine or cube anywhere;
- no file is read except the portal's own text, the disclosure-control doc, the portal's
  settings (the service credential file, Streamlit's secrets for the OpenID Connect check)
  and, in boot.py, the test hook's own log; no parquet, zone or work-folder path, and no
  name of a secret, key or store variable;
- every cached function takes the role first, so cached data never crosses roles;
- every page passes the checkpoint (`ui.page("<its key>")`) before anything else, pages
  define no functions (widgets only), and every download goes through portal.web.downloads
  (which sanitises against formula injection).
tests/test_process_boundary.py proves the same of the running process.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from portal.web.access import PAGES

ROOT = Path(__file__).resolve().parents[1]
PAGE_FILES = sorted((ROOT / "pages").rglob("*.py"))
WEB_FILES = sorted((ROOT / "portal" / "web").glob("*.py"))
ENTRY = ROOT / "portal_web.py"
UI_FILES = [ROOT / "app.py", ENTRY, *PAGE_FILES, *WEB_FILES]

STDLIB_OK = {
    "__future__",
    "base64",
    "collections",
    "contextlib",
    "dataclasses",
    "datetime",
    "functools",  # the portal's answer cache and the chart template, built once
    "hashlib",
    "html",  # escaping for the printable report (portal/web/report.py)
    "importlib.util",
    "io",
    "json",
    "logging",
    "math",  # chart axes of the printable report
    "os",
    "pathlib",
    "re",
    "secrets",
    "sys",
    "threading",
    "time",
    "tomllib",
    "types",  # read-only mappings for cached answers
    "typing",
    "urllib.parse",
    "xml",
    "zipfile",
}
# xlsxwriter writes workbooks into memory from the table as shown; it reads nothing.
THIRD_PARTY_OK = {"streamlit", "polars", "plotly", "httpx", "xlsxwriter"}
PAGE_OK = {"__future__", "streamlit", "polars", "portal.web"}
# registry.settings: the web process reads its environment through WebSettings, which has
# no field for a key, a secret, the store or the work folder (tests/test_settings.py).
WEB_OK = {"portal.web", "registry.settings"}
ENTRY_OK = {"starlette"}
FILE_READERS = {
    "read_parquet",
    "scan_parquet",
    "read_csv",
    "scan_csv",
    "read_ipc",
    "scan_ipc",
    "read_json",
    "read_ndjson",
    "scan_ndjson",
    "read_excel",
    "read_database",
    "read_database_uri",
    "read_delta",
    "scan_delta",
    "read_avro",
    "read_text",
    "read_bytes",
    "open",
}
# (file, function) -> readers it may call.
READS_ALLOWED = {
    ("widgets.py", "content"): {"read_text"},
    ("widgets.py", "disclosure_method"): {"read_text"},
    ("config.py", "load_config"): {"read_text"},  # the service credential file
    ("config.py", "_secrets_auth"): {"read_text"},  # an [auth] section refuses demo mode
    ("boot.py", "record_opens"): {"open"},  # the test hook's own log
    ("plot.py", "_script"): {"read_text"},  # the chart component's own script
}
FORBIDDEN_TEXT = (
    "zone_a",
    "zone_b",
    ".parquet",
    "linked_records",
    "quarantine/",
    "quarantine_report",
    "run.json",
    "PORTAL_SDC_SECRET",
    "PORTAL_PSEUDONYM_KEY",
    "PORTAL_WORK_DIR",
    "cube_cells",
    "cube_blobs",
)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(tree: ast.Module) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append(("<relative import>", node.lineno))
            else:
                mod = node.module or ""
                # `from portal.web import data` imports portal.web.data
                out.extend((f"{mod}.{a.name}", node.lineno) for a in node.names)
    return out


def _allowed(module: str, allow: set[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allow)


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    """node -> name of the innermost function that contains it (module level: absent)."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, fn: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else fn
            if inner is not None:
                owner[child] = inner
            visit(child, inner)

    visit(tree, None)
    return owner


def test_the_files_exist():
    assert (ROOT / "app.py").exists()
    assert len(PAGE_FILES) >= 8
    assert any(p.name == "data.py" for p in WEB_FILES)


def test_no_page_script_sits_directly_in_pages():
    """A .py file directly in pages/ makes Streamlit run its legacy multipage mode for the
    first run of a fresh server: that run serves any pages/*.py by URL without app.py's
    role-based navigation. Page scripts therefore live in pages/views/."""
    assert not list((ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("path", UI_FILES, ids=_rel)
def test_imports_are_on_the_allow_list(path: Path):
    rel = _rel(path)
    if rel == "app.py" or rel.startswith("pages/"):
        allow = PAGE_OK
    elif path == ENTRY:
        allow = STDLIB_OK | THIRD_PARTY_OK | WEB_OK | ENTRY_OK
    else:
        allow = STDLIB_OK | THIRD_PARTY_OK | WEB_OK
    bad = [
        f"{rel}:{line} imports {mod}"
        for mod, line in _imports(_tree(path))
        if not _allowed(mod, allow)
    ]
    assert not bad, "imports that could reach unprotected data:\n" + "\n".join(bad)


def test_nothing_reaches_the_release_layer_zone_a_or_b_or_a_database():
    """Belt and braces over the allow-list: these never appear in any portal file."""
    forbidden = (
        "anonymise",
        "pipelines",
        "synthetic",
        "portal.service",
        "portal.documents",
        "portal.cli",
        "portal.cmd_table",
        "sqlalchemy",
        "duckdb",
        "sqlite3",
        "psycopg",
        "splink",
        "pyarrow",
        "pandas",
    )
    bad = []
    for path in UI_FILES:
        tree = _tree(path)
        for mod, line in _imports(tree):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{_rel(path)}:{line} imports {mod}")
        # and no way round the import rules
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                builtin = isinstance(f, ast.Name) and f.id in (
                    "__import__",
                    "exec",
                    "eval",
                    "compile",
                )
                dynamic = isinstance(f, ast.Attribute | ast.Name) and (
                    getattr(f, "attr", None) == "import_module"
                    or getattr(f, "id", None) == "import_module"
                )
                if builtin or dynamic:
                    bad.append(f"{_rel(path)}:{node.lineno} imports or runs code dynamically")
    assert not bad, "\n".join(bad)


def test_no_disclosure_control_code_and_no_database_in_the_web_process():
    for path in UI_FILES:
        tree = _tree(path)
        text = path.read_text(encoding="utf-8")
        assert "cellkey" not in text and "read_cube" not in text, _rel(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                assert name not in ("tabulate", "create_engine", "connect"), (
                    f"{_rel(path)}:{node.lineno} calls {name}"
                )
            if isinstance(node, ast.Attribute) and node.attr in ("engine", "execute"):
                pytest.fail(f"{_rel(path)}:{node.lineno} touches a database")


def test_the_web_modules_load_without_the_data_layers():
    """Importing everything the web process runs pulls in no anonymise, pipelines, SQL or
    DuckDB module (streamlit's own imports included)."""
    code = (
        "import sys, portal.web.ui, portal.web.data, portal.web.auth, portal.web.boot\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('anonymise', 'pipelines', 'synthetic', 'sqlalchemy', 'psycopg', 'duckdb', 'splink')"
        " or m.startswith('portal.service'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", out.stdout


def test_files_read_are_only_the_portals_own():
    bad = []
    for path in UI_FILES:
        tree = _tree(path)
        owner = _enclosing_functions(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name in FILE_READERS:
                    ok = READS_ALLOWED.get((path.name, owner.get(node) or ""), set())
                    if name not in ok or path.parent.name != "web":
                        bad.append(f"{_rel(path)}:{node.lineno} {name}() in {owner.get(node)}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                hit = [t for t in FORBIDDEN_TEXT if t in node.value]
                if hit:
                    bad.append(f"{_rel(path)}:{node.lineno} mentions {hit}")
    assert not bad, "\n".join(bad)


def test_cached_functions_are_partitioned_by_role():
    found = []
    for path in WEB_FILES:
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                # Streamlit's cache, or the portal's own answer cache (portal.web.data._memo)
                if (isinstance(target, ast.Attribute) and target.attr == "cache_data") or (
                    isinstance(target, ast.Name) and target.id == "_memo"
                ):
                    scope = [
                        k.value.value
                        for k in (dec.keywords if isinstance(dec, ast.Call) else [])
                        if k.arg == "scope" and isinstance(k.value, ast.Constant)
                    ]
                    first = node.args.args[0].arg if node.args.args else None
                    found.append(node.name)
                    assert first == "role_key" or scope == ["session"], (
                        f"{path.name}:{node.name} is cached for every user but does not take "
                        "role_key first"
                    )
    assert {"protected_table", "release_measures", "latest_release", "policy"} <= set(found)


def _page_key_call(tree: ast.Module) -> str | None:
    """The key of the first `ui.page("<key>")` call in the module body."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        value = stmt.value if isinstance(stmt, ast.Assign | ast.Expr) else None
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "page"
            and isinstance(value.func.value, ast.Name)
            and value.func.value.id == "ui"
            and value.args
            and isinstance(value.args[0], ast.Constant)
        ):
            return str(value.args[0].value)
        return None
    return None


@pytest.mark.parametrize("spec", PAGES, ids=lambda s: s.key)
def test_every_page_passes_the_checkpoint_first(spec):
    path = ROOT / spec.path
    assert path.exists(), f"registry names {spec.path}, which does not exist"
    assert _page_key_call(_tree(path)) == spec.key, (
        f"{spec.path} must start with ui.page({spec.key!r}) (the permission checkpoint)"
    )


def test_every_page_file_is_registered_or_is_the_sign_in_page():
    registered = {Path(p.path).name for p in PAGES}
    assert {p.name for p in PAGE_FILES} == registered | {"sign_in.py"}


@pytest.mark.parametrize("path", PAGE_FILES, ids=_rel)
def test_pages_hold_widgets_only(path: Path):
    """No logic in a page: its one allowed function is `body`, the page's widgets drawn as
    a fragment, defined at the top level and handed to `ctx.body` (PageContext.body)."""
    tree = _tree(path)
    fragment = [
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name == "body" and not n.args.args
    ]
    handed = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "body"
        and [a.id for a in n.args if isinstance(a, ast.Name)] == ["body"]
    ]
    defs = [
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not (n in fragment and handed)
    ]
    assert not defs, f"{_rel(path)} defines {defs}: logic belongs in portal/web"
    assert len(fragment) <= 1 and len(handed) == len(fragment)


def test_every_download_goes_through_the_sanitising_helpers():
    checked = 0
    for path in [*PAGE_FILES, *WEB_FILES, ROOT / "app.py"]:
        for node in ast.walk(_tree(path)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "download_button"
            ):
                continue
            data = node.args[1] if len(node.args) > 1 else None
            data = data or next((k.value for k in node.keywords if k.arg == "data"), None)
            body = data.body if isinstance(data, ast.Lambda) else data
            ok = (
                isinstance(body, ast.Call)
                and isinstance(body.func, ast.Attribute)
                and isinstance(body.func.value, ast.Name)
                and body.func.value.id == "downloads"
                and body.func.attr
                in ("csv_bytes", "xlsx_bytes", "json_bytes", "extract_bytes", "report_bytes")
            )
            assert ok, f"{_rel(path)}:{node.lineno}: download data must come from downloads.*"
            checked += 1
    assert checked >= 4
    src = (ROOT / "portal/web/downloads.py").read_text(encoding="utf-8")
    assert "safe_frame" in src
