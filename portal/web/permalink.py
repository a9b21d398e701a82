"""Shareable addresses of a view (pure): what a page shows, written in its URL's query.

Every chart page and the table builder keep their view in the address bar as they change:
the measure, the time period, the breakdowns, the filters and, once pinned, the release.
Opening that address (a bookmark, a link in an email) reopens the same view; signed out,
the sign-in page answers at the address and then opens it. A *permalink* is the same
address with the release pinned (`release=<id>`): it shows that release's figures for
good, labelled as superseded once a newer release exists, as Explore Education
Statistics' permalinks do. A bookmark without `release` follows the latest release.

Parameters (all optional; anything unknown or not allowed for the measure is ignored and
the page says so):

| name | meaning | example |
|---|---|---|
| `release` | the release whose figures to show | `20261201T154350Z-c82ab3` |
| `measure` | the measure | `eh_referrals` |
| `period` | the time grain of a trend chart | `quarter` |
| `by` | breakdowns (table rows, or a chart's series), comma-separated | `locality,age_band` |
| `cols` | the table builder's column breakdown (a cross-tabulation) | `financial_year` |
| `where` | a filter, `dimension:value`; repeated | `locality:Castlemere` |
| `rows` | table rows to show, `dimension:value`; repeated | `age_band:Under 1` |
| `year` | the financial year of a breakdown chart | `2024/25` |
| `totals` | add totals | `1` |
| `show` | the value in a cross-tabulation's cells | `rate` |
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

PARAMS = ("release", "measure", "period", "by", "cols", "where", "rows", "year", "totals", "show")
# Repeated parameters (every other one has a single value).
REPEATED = frozenset({"where", "rows"})
# What a value may look like: printable text, no control characters, not too long; names
# (release ids, measures, dimensions) only letters, digits and a little punctuation, since
# they end up in the service's URL paths.
_VALUE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
_NAMES = re.compile(r"^[a-z0-9_]{1,40}(,[a-z0-9_]{1,40}){0,5}$")
_SHAPES = {
    "release": _NAME,
    "measure": _NAME,
    "period": _NAME,
    "cols": _NAME,
    "show": _NAME,
    "by": _NAMES,
}

Params = dict[str, list[str]]


def read(query: Mapping[str, Sequence[str]]) -> Params:
    """The known parameters of a URL query (name -> values), junk dropped."""
    out: Params = {}
    for name in PARAMS:
        shape = _SHAPES.get(name, _VALUE)
        values = [v for v in query.get(name, ()) if isinstance(v, str) and shape.match(v)]
        if values:
            out[name] = values if name in REPEATED else values[:1]
    return out


def one(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def listed(params: Params, name: str) -> list[str]:
    """A comma-separated parameter as a list (`by=locality,age_band`)."""
    value = one(params, name)
    return [v for v in (value or "").split(",") if v]


def pairs(params: Params, name: str) -> dict[str, list[str]]:
    """`where=locality:Castlemere&where=age_band:1-4` as {dimension: [values]} (the value
    is everything after the first colon, so a value may itself hold a colon)."""
    out: dict[str, list[str]] = {}
    for item in params.get(name, ()):
        dim, sep, value = item.partition(":")
        if sep and dim and value:
            out.setdefault(dim, []).append(value)
    return out


def view(
    *,
    release: str | None = None,
    measure: str | None = None,
    period: str | None = None,
    by: Iterable[str] = (),
    cols: str | None = None,
    where: Mapping[str, str | Sequence[str]] | None = None,
    rows: Mapping[str, Sequence[str]] | None = None,
    year: str | None = None,
    totals: bool = False,
    show: str | None = None,
) -> Params:
    """The parameters of a view, in one canonical order (so the same view always has the
    same address)."""
    out: Params = {}
    single = {"release": release, "measure": measure, "period": period, "cols": cols}
    for name, value in single.items():
        if value:
            out[name] = [value]
    by = [b for b in by if b]
    if by:
        out["by"] = [",".join(by)]
    for name, mapping in (("where", where), ("rows", rows)):
        items = [
            f"{dim}:{v}"
            for dim, values in sorted((mapping or {}).items())
            for v in ([values] if isinstance(values, str) else values)
        ]
        if items:
            out[name] = items
    if year:
        out["year"] = [year]
    if totals:
        out["totals"] = ["1"]
    if show:
        out["show"] = [show]
    return {name: out[name] for name in PARAMS if name in out}


def query(params: Params) -> str:
    """The URL query of `params` ("" when there are none)."""
    return urlencode([(name, v) for name in PARAMS for v in params.get(name, ())])


def address(base: str, params: Params, *, anchor: str | None = None) -> str:
    """`base` (the page's address) with the view's query and an optional #anchor."""
    q = query(params)
    return base + (f"?{q}" if q else "") + (f"#{anchor}" if anchor else "")


def pinned(params: Params, release_id: str) -> Params:
    """The permalink's parameters: the view with its release pinned."""
    return view_with(params, release=release_id)


def view_with(params: Params, **changes: str | None) -> Params:
    """`params` with single-valued parameters set (None removes one)."""
    out = {k: list(v) for k, v in params.items()}
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = [value]
    return {name: out[name] for name in PARAMS if name in out}
