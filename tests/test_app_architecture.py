"""No page can bypass disclosure control: a static proof over app.py, pages/ and the
portal's web package.

Parsed with `ast`, never imported. The rules:
- each file imports only from an allow-list; pages cannot import anonymise or pipelines
  at all, and only portal/web/data.py may import the release layer, the store or the
  disclosure-control secret code (zone A/B stages, SQL drivers, DuckDB, Splink: never);
- `anonymise.cellkey` is used only in data.py's one vetted helper, and only to load the
  secret and get the perturbation table;
- `tabulate` is called in one place (data.protected_table) and nothing touches the store
  engine or cubes;
- no file is read except run.json and the quarantine counts (admin page), the portal's
  own text and the disclosure-control doc; no parquet, no zone B path, no quarantined rows;
- every cached function takes the role first, so cached data never crosses roles;
- every page passes the checkpoint (`ui.page("<its key>")`) before anything else, pages
  define no functions (widgets only), and every download goes through portal.web.downloads
  (which sanitises against formula injection).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portal.web.access import PAGES

ROOT = Path(__file__).resolve().parents[1]
PAGE_FILES = sorted((ROOT / "pages").rglob("*.py"))
WEB_FILES = sorted((ROOT / "portal" / "web").glob("*.py"))
UI_FILES = [ROOT / "app.py", *PAGE_FILES, *WEB_FILES]

STDLIB_OK = {
    "__future__",
    "base64",
    "collections",
    "dataclasses",
    "datetime",
    "getpass",
    "hashlib",
    "hmac",
    "importlib.util",
    "io",
    "json",
    "logging",
    "os",
    "pathlib",
    "re",
    "secrets",
    "time",
    "tomllib",
    "typing",
    "xml",
    "zipfile",
}
THIRD_PARTY_OK = {"streamlit", "polars", "plotly"}
PAGE_OK = {"__future__", "streamlit", "polars", "portal.web"}
# Modules only the data door may import.
DATA_ONLY = {
    "anonymise.release",
    "anonymise.cellkey",
    "anonymise.policy",
    "pipelines.store",
    # The research extract door (zone B leaves only through the extract builder).
    "anonymise.extract",
    "anonymise.catalogue",
}
WEB_OK = {"portal.web", "anonymise.safe_output"}
CELLKEY_OK = {
    "load_sdc_secret",
    "ptable_for",
    "SecretNotConfiguredError",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "PerturbationTable",
}
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
    ("data.py", "_quarantine_counts"): {"read_csv"},
    ("data.py", "_run_summary"): {"read_text"},
    ("ui.py", "content"): {"read_text"},
    ("ui.py", "disclosure_method"): {"read_text"},
    ("auth.py", "load_accounts"): {"read_text"},
    ("config.py", "load_config"): {"read_text"},
}
FORBIDDEN_TEXT = ("zone_b", ".parquet", "linked_records", "persons.parquet", "quarantine/")


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
    elif rel == "portal/web/data.py":
        allow = STDLIB_OK | THIRD_PARTY_OK | WEB_OK | DATA_ONLY
    else:
        allow = STDLIB_OK | THIRD_PARTY_OK | WEB_OK
    bad = [
        f"{rel}:{line} imports {mod}"
        for mod, line in _imports(_tree(path))
        if not _allowed(mod, allow)
        # `from portal.web.access import User` is fine; `from portal.web import data` too.
    ]
    assert not bad, "imports that could reach unprotected data:\n" + "\n".join(bad)


def test_nothing_reaches_zone_a_or_b_or_a_database():
    """Belt and braces over the allow-list: these never appear in any portal file."""
    forbidden = (
        "pipelines.ingest",
        "pipelines.link",
        "pipelines.zone_b",
        "pipelines.derive",
        "pipelines.run",
        "pipelines.publish",
        "pipelines.quality",
        "pipelines.contracts",
        "anonymise.pseudonymise",
        "anonymise.lattice",
        "pipelines.research",
        "synthetic",
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


def test_cellkey_only_through_the_vetted_helper():
    uses = []
    for path in UI_FILES:
        tree = _tree(path)
        owner = _enclosing_functions(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "cellkey"
            ):
                uses.append((_rel(path), owner.get(node), node.attr, node.lineno))
    assert uses, "expected the vetted helper to use cellkey"
    for rel, fn, attr, line in uses:
        assert rel == "portal/web/data.py", f"{rel}:{line} uses cellkey.{attr}"
        assert attr in CELLKEY_OK, f"{rel}:{line} uses cellkey.{attr}"
        # The annotation of the helper's return type is not a call.
        assert fn in ("_ptable", None) or attr == "PerturbationTable", (rel, fn, attr, line)
    called_in = {fn for _, fn, attr, _ in uses if attr in ("load_sdc_secret", "ptable_for")}
    assert called_in == {"_ptable"}


def test_tabulate_is_called_in_one_place_and_the_store_is_never_bypassed():
    calls = []
    for path in UI_FILES:
        tree = _tree(path)
        owner = _enclosing_functions(tree)
        text = path.read_text(encoding="utf-8")
        assert "read_cube" not in text and "cube_cells" not in text, _rel(path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if name == "tabulate":
                    calls.append((_rel(path), owner.get(node)))
            if isinstance(node, ast.Attribute) and node.attr in ("engine", "connect", "execute"):
                pytest.fail(f"{_rel(path)}:{node.lineno} touches the database directly")
    assert calls == [("portal/web/data.py", "protected_table")]


def test_files_read_are_only_the_aggregate_ones():
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
    # and the two admin files are the named aggregate ones
    data_src = (ROOT / "portal/web/data.py").read_text(encoding="utf-8")
    assert '"run.json"' in data_src and '"quarantine_report.csv"' in data_src


def test_cached_functions_are_partitioned_by_role():
    found = []
    for path in WEB_FILES:
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Attribute) and target.attr == "cache_data":
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
    assert "protected_table" in found


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
    tree = _tree(path)
    defs = [
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    assert not defs, f"{_rel(path)} defines {defs}: logic belongs in portal/web"


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
                and body.func.attr in ("csv_bytes", "xlsx_bytes", "json_bytes", "extract_bytes")
            )
            assert ok, f"{_rel(path)}:{node.lineno}: download data must come from downloads.*"
            checked += 1
    assert checked >= 4
    src = (ROOT / "portal/web/downloads.py").read_text(encoding="utf-8")
    assert "safe_frame" in src
