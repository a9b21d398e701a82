"""Explore Education Statistics (EES) data files: the format, defined once.

DfE publishes national statistics on EES as tidy CSV files, each with a `.meta.csv`
describing its columns. Two parts of the portal use the format: the comparator import
(`portal comparators load`: England, regional and local authority figures a council
downloads) and the open-data export (`portal publish-ees`: the council's own published
measures, written to the same rules). Both check files with `validate`.

The rules are DfE's data screener's (`dfe-analytical-services/eesyscreener`, reference
values `req_data_cols`, `req_meta_cols`, `acceptable_time_ids`, `gss_symbols`,
`acceptable_indicator_units` and `geography_df`; checks `precheck_col_req_data`,
`precheck_col_req_meta`, `precheck_cross_meta_to_data`, `precheck_meta_col_type`,
`check_meta_label`, `check_meta_ind_unit`, `check_meta_ind_unit_validation`,
`check_meta_ind_dp_values`, `check_meta_indicator_dp`, `check_meta_indicator_grouping`,
`precheck_time_id_valid`, `precheck_time_id_mix`, `check_time_period`,
`check_time_period_six`, `precheck_geog_level`, `check_geog_level_completed`,
`check_filter_blanks`, `check_filter_whitespace`, `check_filter_defaults`,
`check_ind_invalid_entry`, `check_general_null` and `check_general_dupes`):

- data files carry `time_period`, `time_identifier`, `geographic_level`, `country_code`
  and `country_name`, plus the code and name columns of every geographic level they use;
- meta files carry `col_name, col_type, label, indicator_grouping, indicator_unit,
  indicator_dp, filter_hint, filter_grouping_column`; every filter and indicator has a
  label; indicator units are blank or one of `%`, `pp`, `£`, `£m`, `numberstring`;
- an indicator cell is a number or exactly one GSS symbol (`c` confidential, `low`
  rounds to zero, `x` not available, `z` not applicable): never blank, never a legacy
  symbol (`~`, `:`) or a null word (`NA`, `NULL`);
- filter cells are never blank, and every filter has its default value ("Total");
- no two rows share a time period, geography and filter values.

The screener also checks codes against lists of real geographies; `validate` does not
(the demo's fictional authorities use `X` codes, like the synthetic county), and says so.
Problems are gathered, never stopped at the first: each names the file, the row (its line
in the file: the header is line 1), the column and what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

REQUIRED_DATA_COLUMNS = (
    "time_period",
    "time_identifier",
    "geographic_level",
    "country_code",
    "country_name",
)
REQUIRED_META_COLUMNS = (
    "col_name",
    "col_type",
    "label",
    "indicator_grouping",
    "indicator_unit",
    "indicator_dp",
    "filter_hint",
    "filter_grouping_column",
)
OPTIONAL_META_COLUMNS = ("filter_default", "parent_filter")
COL_TYPES = ("Filter", "Indicator")
# GSS symbols EES accepts in an indicator cell (eesyscreener's gss_symbols).
GSS_SYMBOLS = ("c", "low", "x", "z")
LEGACY_SYMBOLS = ("~", ":")
NULL_WORDS = ("NULL", "Null", "null", "NA", "na", "N/A", "n/a", ".", "..", "-")
# Reported once, as what they are, rather than also as "not a number".
_NOT_SYMBOLS = (*NULL_WORDS, *LEGACY_SYMBOLS)
INDICATOR_UNITS = ("%", "pp", "£", "£m", "numberstring")
DEFAULT_FILTER_VALUE = "Total"

_TERMS = ("Spring term", "Autumn term", "Summer term")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip
_WEEKS = tuple(f"Week {i}" for i in range(1, 53))
_FINANCIAL_QUARTERS = tuple(f"Financial year Q{i}" for i in range(1, 5))
_FINANCIAL_HALVES = ("Part 1 (April to September)", "Part 2 (October to March)")
# Groups of time identifiers a file may mix (one group per file).
TIME_ID_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Autumn and spring term",),
    ("Calendar year",),
    ("Financial year",),
    ("Academic year",),
    ("Tax year",),
    ("Reporting year",),
    _TERMS,
    _WEEKS,
    _MONTHS,
    _FINANCIAL_QUARTERS,
    _FINANCIAL_HALVES,
)
FOUR_DIGIT_TIME_IDS = frozenset(("Calendar year", "Reporting year", *_WEEKS, *_MONTHS))
SIX_DIGIT_TIME_IDS = frozenset(
    (
        "Autumn and spring term",
        *_TERMS,
        "Financial year",
        "Academic year",
        "Tax year",
        *_FINANCIAL_QUARTERS,
        *_FINANCIAL_HALVES,
    )
)
TIME_IDENTIFIERS = FOUR_DIGIT_TIME_IDS | SIX_DIGIT_TIME_IDS

NATIONAL, REGIONAL, LOCAL_AUTHORITY = "National", "Regional", "Local authority"
# Geographic levels: code column, name column, secondary code column (eesyscreener's
# geography_df). A row at a level also carries the columns of the levels above it.
GEOGRAPHY: dict[str, tuple[str | None, str, str | None]] = {
    NATIONAL: ("country_code", "country_name", None),
    REGIONAL: ("region_code", "region_name", None),
    LOCAL_AUTHORITY: ("new_la_code", "la_name", "old_la_code"),
    "Local authority district": ("lad_code", "lad_name", None),
    "RSC region": (None, "rsc_region_lead_name", None),
    "Parliamentary constituency": ("pcon_code", "pcon_name", None),
    "Local skills improvement plan area": ("lsip_code", "lsip_name", None),
    "Local enterprise partnership": (
        "local_enterprise_partnership_code",
        "local_enterprise_partnership_name",
        None,
    ),
    "English devolved area": ("english_devolved_area_code", "english_devolved_area_name", None),
    "Opportunity area": ("opportunity_area_code", "opportunity_area_name", None),
    "Ward": ("ward_code", "ward_name", None),
    "MAT": ("trust_id", "trust_name", None),
    "Sponsor": ("sponsor_id", "sponsor_name", None),
    "School": ("school_urn", "school_name", "school_laestab"),
    "Provider": ("provider_ukprn", "provider_name", None),
    "Institution": ("institution_id", "institution_name", None),
    "Planning area": ("planning_area_code", "planning_area_name", None),
    "Police force area": ("pfa_code", "pfa_name", None),
}
GEOGRAPHY_COLUMNS = frozenset(c for cols in GEOGRAPHY.values() for c in cols if c is not None)
# The columns a row at each level must fill (its own and its parents'), for the levels the
# portal reads and writes.
LEVEL_COLUMNS: dict[str, tuple[str, ...]] = {
    NATIONAL: ("country_code", "country_name"),
    REGIONAL: ("country_code", "country_name", "region_code", "region_name"),
    LOCAL_AUTHORITY: (
        "country_code",
        "country_name",
        "region_code",
        "region_name",
        "new_la_code",
        "old_la_code",
        "la_name",
    ),
}
# How many rows with the same problem are listed before "and N more".
ROWS_LISTED = 10


class EesFileError(Exception):
    """An EES data file or its meta file breaks the format; `problems` lists every one."""

    def __init__(self, problems: Sequence[EesProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class EesProblem:
    file: str
    problem: str
    row: int | None = None  # line in the file (the header is line 1)
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.problem}"


@dataclass(frozen=True)
class EesFile:
    """A data file and its meta file, read as text (every cell a string, blank = null)."""

    name: str  # the data file's name, e.g. "children_in_need.csv"
    data: pl.DataFrame
    meta: pl.DataFrame
    meta_name: str

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".csv")

    def columns_of(self, col_type: str) -> list[str]:
        return self.meta.filter(pl.col("col_type") == col_type)["col_name"].to_list()

    @property
    def filters(self) -> list[str]:
        return self.columns_of("Filter")

    @property
    def indicators(self) -> list[str]:
        return self.columns_of("Indicator")


def meta_path(data_path: Path) -> Path:
    """`x.csv` -> `x.meta.csv` (EES's naming)."""
    return data_path.with_name(data_path.name.removesuffix(".csv") + ".meta.csv")


def _read_csv(path: Path, problems: list[EesProblem]) -> pl.DataFrame | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(EesProblem(path.name, f"cannot be read: {exc.strerror or exc}"))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(
            EesProblem(path.name, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV")
        )
        return None
    if not text.strip():
        problems.append(EesProblem(path.name, "is empty"))
        return None
    try:
        frame = pl.read_csv(text.encode("utf-8"), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append(EesProblem(path.name, f"is not a readable CSV file: {first}"))
        return None
    # Blank cells are empty strings here (never null): the rules tell the two apart from
    # null words like "NA", and a blank is itself a problem in an indicator or filter.
    return frame.with_columns(pl.col(c).fill_null("") for c in frame.columns)


def read_pair(data_path: Path) -> EesFile:
    """Read a data file and the `.meta.csv` beside it; raise EesFileError naming every
    problem of either (format and content, `validate`)."""
    problems: list[EesProblem] = []
    mpath = meta_path(data_path)
    if not data_path.name.endswith(".csv") or data_path.name.endswith(".meta.csv"):
        raise EesFileError(
            [EesProblem(data_path.name, "give the data file (x.csv), not x.meta.csv")]
        )
    if not mpath.exists():
        problems.append(
            EesProblem(data_path.name, f"has no meta file: expected {mpath.name} beside it")
        )
    data = _read_csv(data_path, problems) if data_path.exists() else None
    if not data_path.exists():
        problems.append(EesProblem(data_path.name, "does not exist"))
    meta = _read_csv(mpath, problems) if mpath.exists() else None
    if data is None or meta is None:
        raise EesFileError(problems)
    problems += validate(data, meta, data_name=data_path.name, meta_name=mpath.name)
    if problems:
        raise EesFileError(problems)
    return EesFile(data_path.name, data, meta, mpath.name)


# --- the rules ------------------------------------------------------------------------------


def _rows(
    frame: pl.DataFrame, mask: pl.Expr, file: str, column: str | None, problem: str
) -> list[EesProblem]:
    """One problem per row matching `mask` (the first ROWS_LISTED, then a count)."""
    lines = frame.with_row_index("_i").filter(mask)["_i"].to_list()
    out = [EesProblem(file, problem, row=i + 2, column=column) for i in lines[:ROWS_LISTED]]
    if len(lines) > ROWS_LISTED:
        out.append(
            EesProblem(
                file,
                f"{len(lines) - ROWS_LISTED} more rows with the same problem: {problem}",
                column=column,
            )
        )
    return out


def _blank(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars() == ""


def _number(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().cast(pl.Float64, strict=False).is_not_null()


def validate_meta(meta: pl.DataFrame, *, meta_name: str) -> list[EesProblem]:
    """The meta file's own rules."""
    out: list[EesProblem] = []
    missing = [c for c in REQUIRED_META_COLUMNS if c not in meta.columns]
    if missing:
        out.append(EesProblem(meta_name, f"missing required column(s): {', '.join(missing)}"))
    if not {"col_name", "col_type", "label"} <= set(meta.columns):
        return out
    extra = [
        c for c in meta.columns if c not in REQUIRED_META_COLUMNS and c not in OPTIONAL_META_COLUMNS
    ]
    if extra:
        out.append(EesProblem(meta_name, f"unexpected column(s): {', '.join(extra)}"))
    m = meta
    out += _rows(m, _blank("col_name"), meta_name, "col_name", "col_name is blank")
    out += _rows(
        m,
        ~pl.col("col_type").is_in(COL_TYPES),
        meta_name,
        "col_type",
        "col_type must be Filter or Indicator",
    )
    out += _rows(m, _blank("label"), meta_name, "label", "every filter and indicator needs a label")
    out += _rows(
        m,
        pl.col("col_name").is_duplicated() & ~_blank("col_name"),
        meta_name,
        "col_name",
        "col_name appears more than once",
    )
    out += _rows(
        m,
        pl.col("col_name").str.contains(r"[^a-z0-9_]") & ~_blank("col_name"),
        meta_name,
        "col_name",
        "col_name must be snake_case (lower-case letters, digits and _)",
    )
    is_filter = pl.col("col_type") == "Filter"
    is_indicator = pl.col("col_type") == "Indicator"
    if "indicator_unit" in m.columns:
        out += _rows(
            m,
            is_indicator
            & ~_blank("indicator_unit")
            & ~pl.col("indicator_unit").is_in(INDICATOR_UNITS),
            meta_name,
            "indicator_unit",
            f"indicator_unit must be blank or one of {', '.join(INDICATOR_UNITS)}",
        )
    for col, what in (
        ("indicator_unit", "a unit"),
        ("indicator_dp", "decimal places"),
        ("indicator_grouping", "an indicator grouping"),
    ):
        if col in m.columns:
            out += _rows(
                m, is_filter & ~_blank(col), meta_name, col, f"a filter must not have {what}"
            )
    if "indicator_dp" in m.columns:
        out += _rows(
            m,
            is_indicator
            & ~_blank("indicator_dp")
            & ~pl.col("indicator_dp").str.strip_chars().str.contains(r"^\d+$"),
            meta_name,
            "indicator_dp",
            "indicator_dp must be blank or a whole number of decimal places (0 or more)",
        )
    if "filter_hint" in m.columns:
        out += _rows(
            m,
            is_indicator & ~_blank("filter_hint"),
            meta_name,
            "filter_hint",
            "an indicator must not have a filter hint",
        )
    return out


def validate(
    data: pl.DataFrame, meta: pl.DataFrame, *, data_name: str, meta_name: str
) -> list[EesProblem]:
    """Every way the pair breaks the EES rules above (empty: it passes). Cells are text,
    blank cells empty strings (as `read_pair` reads them)."""
    out = validate_meta(meta, meta_name=meta_name)
    missing = [c for c in REQUIRED_DATA_COLUMNS if c not in data.columns]
    if missing:
        out.append(EesProblem(data_name, f"missing required column(s): {', '.join(missing)}"))
    if not {"col_name", "col_type"} <= set(meta.columns):
        return out
    filters = [c for c in meta.filter(pl.col("col_type") == "Filter")["col_name"].to_list() if c]
    indicators = [
        c for c in meta.filter(pl.col("col_type") == "Indicator")["col_name"].to_list() if c
    ]
    described = set(filters) | set(indicators)
    for col in sorted(described - set(data.columns)):
        out.append(
            EesProblem(meta_name, "is described in the meta file but not in the data", column=col)
        )
    time_geo = set(REQUIRED_DATA_COLUMNS) | GEOGRAPHY_COLUMNS
    for col in data.columns:
        if col not in described and col not in time_geo:
            out.append(
                EesProblem(
                    data_name,
                    "is neither a time or geography column nor described in the meta file",
                    column=col,
                )
            )
        if col in described and col in time_geo:
            out.append(
                EesProblem(
                    meta_name, "a time or geography column must not be in the meta file", column=col
                )  # fmt: skip
            )
    if missing or data.is_empty():
        if data.is_empty():
            out.append(EesProblem(data_name, "has no data rows"))
        return out
    out += _time_problems(data, data_name)
    out += _geography_problems(data, data_name)
    present_filters = [f for f in filters if f in data.columns]
    for col in present_filters:
        out += _rows(data, _blank(col), data_name, col, "a filter cell is blank")
        out += _rows(
            data,
            ~_blank(col) & (pl.col(col) != pl.col(col).str.strip_chars()),
            data_name,
            col,
            "a filter value has spaces before or after it",
        )
        if DEFAULT_FILTER_VALUE not in set(data[col].to_list()):
            out.append(
                EesProblem(
                    data_name,
                    f"filter has no {DEFAULT_FILTER_VALUE!r} value (its default)",
                    column=col,
                )
            )
    for col in (i for i in indicators if i in data.columns):
        v = pl.col(col).str.strip_chars()
        out += _rows(data, _blank(col), data_name, col, "an indicator cell is blank")
        out += _rows(
            data,
            ~_blank(col) & ~_number(col) & ~v.is_in(GSS_SYMBOLS) & ~v.is_in(_NOT_SYMBOLS),
            data_name,
            col,
            f"an indicator cell must be a number or one GSS symbol ({', '.join(GSS_SYMBOLS)})",
        )
    for col in data.columns:
        out += _rows(
            data,
            pl.col(col).str.strip_chars().is_in(_NOT_SYMBOLS),
            data_name,
            col,
            "a null or legacy symbol ('NA', 'NULL', ':', '-' ...); use a GSS symbol",
        )
    keys = [
        c
        for c in ("time_period", "time_identifier", "geographic_level", *sorted(GEOGRAPHY_COLUMNS))
        if c in data.columns
    ] + present_filters
    out += _rows(
        data,
        pl.struct(keys).is_duplicated(),
        data_name,
        None,
        "duplicate row: another row has the same time period, geography and filter values",
    )
    return out


def _time_problems(data: pl.DataFrame, file: str) -> list[EesProblem]:
    out: list[EesProblem] = []
    tid, tp = pl.col("time_identifier"), pl.col("time_period").str.strip_chars()
    out += _rows(
        data,
        ~tid.is_in(sorted(TIME_IDENTIFIERS)),
        file,
        "time_identifier",
        "not a time identifier EES accepts (e.g. 'Financial year', 'Reporting year')",
    )
    out += _rows(
        data, ~tp.str.contains(r"^\d+$"), file, "time_period", "time_period must be a number"
    )
    out += _rows(
        data,
        tid.is_in(sorted(FOUR_DIGIT_TIME_IDS)) & ~tp.str.contains(r"^\d{4}$"),
        file,
        "time_period",
        "this time identifier needs a four-digit time_period (e.g. 2025)",
    )
    six = tid.is_in(sorted(SIX_DIGIT_TIME_IDS))
    out += _rows(
        data,
        six & ~tp.str.contains(r"^\d{6}$"),
        file,
        "time_period",
        "this time identifier needs a six-digit time_period (e.g. 202425)",
    )
    first = tp.str.slice(2, 2).cast(pl.Int32, strict=False)
    second = tp.str.slice(4, 2).cast(pl.Int32, strict=False)
    out += _rows(
        data,
        six & tp.str.contains(r"^\d{6}$") & (((first + 1) % 100) != second),
        file,
        "time_period",
        "a six-digit time_period names two consecutive years (e.g. 202425)",
    )
    found = [t for t in data["time_identifier"].unique().to_list() if t in TIME_IDENTIFIERS]
    groups = {next(i for i, g in enumerate(TIME_ID_GROUPS) if t in g) for t in found}
    if len(groups) > 1:
        out.append(
            EesProblem(
                file,
                f"mixes time identifiers that cannot go in one file: {', '.join(sorted(found))}",
                column="time_identifier",
            )
        )
    return out


def _geography_problems(data: pl.DataFrame, file: str) -> list[EesProblem]:
    out: list[EesProblem] = []
    level = pl.col("geographic_level")
    out += _rows(
        data,
        ~level.is_in(list(GEOGRAPHY)),
        file,
        "geographic_level",
        "not a geographic level EES accepts (e.g. National, Regional, Local authority)",
    )
    for lvl, cols in LEVEL_COLUMNS.items():
        at_level = level == lvl
        has_rows = data.filter(at_level).height > 0
        for col in cols:
            if col not in data.columns:
                if has_rows:
                    out.append(
                        EesProblem(file, f"{lvl} rows need this column; it is missing", column=col)
                    )
                continue
            out += _rows(data, at_level & _blank(col), file, col, f"blank in a {lvl} row")
    return out


def financial_year_of(time_identifier: str, time_period: str) -> str | None:
    """The portal's financial-year label ("2024/25") of an EES period, where the period is
    a financial year: 'Financial year' 202425, or 'Reporting year' 2025 (DfE's children in
    need and looked-after children collections: the year ending 31 March 2025)."""
    tp = time_period.strip()
    if time_identifier == "Financial year" and len(tp) == 6 and tp.isdigit():
        return f"{tp[:4]}/{tp[4:]}"
    if time_identifier == "Reporting year" and len(tp) == 4 and tp.isdigit():
        start = int(tp) - 1
        return f"{start}/{(start + 1) % 100:02d}"
    return None


def ees_financial_year(label: str) -> str:
    """'2024/25' -> EES time_period '202425' (time identifier 'Financial year')."""
    return label[:4] + label[5:7]
