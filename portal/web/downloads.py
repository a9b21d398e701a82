"""Files a reader can download: CSV, JSON and an XLSX workbook (pure).

Every file is made from the table as shown (protected values, symbols included) and
passes `safe_frame` first, so no cell can start a spreadsheet formula (the same rule as
`anonymise.safe_output`, which this process may not import: tests/test_app_architecture.py
checks the two agree). The XLSX is written with xlsxwriter, with text cells as strings
(never parsed as formulas, numbers or links) and numbers where the published value is a
number; the title, subtitle, release and footnotes go with it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import polars as pl

from portal.web.report import Report, render

if TYPE_CHECKING:
    from portal.web.data import ExtractFiles

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
# Characters XML 1.0 cannot carry at all.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# A cell starting with one of these is run as a formula by Excel and LibreOffice.
FORMULA_START = r"^[=+\-@\t\r]"


def safe_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Text cells that could start a formula get a leading apostrophe (OWASP's advice)."""
    return df.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, dtype in df.schema.items()
        if dtype == pl.Utf8
    )


def safe(shown: pl.DataFrame) -> pl.DataFrame:
    return safe_frame(shown)


def csv_bytes(shown: pl.DataFrame) -> bytes:
    return safe(shown).write_csv().encode("utf-8")


def report_bytes(doc: Report) -> bytes:
    """The printable report as one HTML file: `report.render` escapes every text it is
    given (labels, headlines, footnotes), so nothing in a table can become markup."""
    return render(doc).encode("utf-8")


def extract_bytes(files: ExtractFiles, part: str) -> bytes:
    """One file of a research extract, exactly as its certificate describes it (the data's
    SHA-256 is in the certificate). anonymise.extract.render_extract made every CSV part
    formula-safe with safe_frame; this only picks the part."""
    return {
        "data": files.data,
        "dictionary": files.dictionary,
        "certificate_json": files.certificate_json,
        "certificate_text": files.certificate_text,
    }[part]


def json_bytes(
    shown: pl.DataFrame,
    *,
    title: str,
    measure: str,
    release_id: str | None,
    data_as_at: date | None,
    policy_id: str,
    footnotes: Sequence[str],
) -> bytes:
    doc = {
        "measure": measure,
        "title": title,
        "release_id": release_id,
        "data_as_at": data_as_at.isoformat() if data_as_at else None,
        "policy": policy_id,
        "columns": shown.columns,
        "rows": safe(shown).to_dicts(),
        "footnotes": list(footnotes),
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --- XLSX ---------------------------------------------------------------------------

Cell = str | int | float | None


def _clean(value: str) -> str:
    return _INVALID_XML.sub("", value)


def xlsx_bytes(
    shown: pl.DataFrame,
    *,
    title: str,
    subtitle: str,
    source: str,
    footnotes: Sequence[str],
    numeric_columns: Sequence[str] = (),
) -> bytes:
    """A two-sheet workbook: "Table" (title, subtitle, source, then the table) and
    "Notes" (the footnotes). Values of `numeric_columns` that are numbers are written
    as numbers; symbols stay text. Every other cell is written as a string: xlsxwriter is
    told never to turn one into a formula, a number or a link, and `safe` has already put
    an apostrophe before anything a spreadsheet would run as a formula."""
    import xlsxwriter  # only when someone downloads a workbook

    frame = safe(shown)
    numeric = {c for c in frame.columns if c in numeric_columns}
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(
        buf,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    base = {"font_name": "Arial", "font_size": 11}
    text = book.add_format(base)
    bold = book.add_format(base | {"bold": True})
    big = book.add_format(base | {"bold": True, "font_size": 14})
    whole = book.add_format(base | {"num_format": "#,##0"})
    decimal = book.add_format(base)

    sheet = book.add_worksheet("Table")
    sheet.write_string(0, 0, _clean(title), big)
    sheet.write_string(1, 0, _clean(subtitle), text)
    sheet.write_string(2, 0, _clean(source), text)
    for c, name in enumerate(frame.columns):
        sheet.write_string(4, c, _clean(name), bold)
        values = frame[name].to_list()
        width = min(60, max(10, len(name) + 2, *(len(str(v)) + 2 for v in values[:500])))
        sheet.set_column(c, c, width)
        for r, value in enumerate(values, start=5):
            if value is None or value == "":
                continue
            if name in numeric and isinstance(value, str) and _NUMBER.match(value):
                is_whole = "." not in value
                sheet.write_number(r, c, int(value) if is_whole else float(value),
                                   whole if is_whole else decimal)  # fmt: skip
            elif isinstance(value, int | float) and not isinstance(value, bool):
                sheet.write_number(r, c, value, text)
            else:
                sheet.write_string(r, c, _clean(str(value)), text)

    notes = book.add_worksheet("Notes")
    notes.write_string(0, 0, "Notes", big)
    notes.write_string(1, 0, "Note number", bold)
    notes.write_string(1, 1, "Note text", bold)
    notes.set_column(0, 0, 14)
    notes.set_column(1, 1, 100)
    for i, note in enumerate(footnotes, start=1):
        notes.write_number(i + 1, 0, i, text)
        notes.write_string(i + 1, 1, _clean(note), text)
    book.close()
    return buf.getvalue()
