"""Files a reader can download: CSV, JSON and a small XLSX written by hand (pure).

Every file is made from the table as shown (protected values, symbols included) and
passes `safe_frame` first, so no cell can start a spreadsheet formula (the same rule as
`anonymise.safe_output`, which this process may not import: tests/test_app_architecture.py
checks the two agree). The XLSX needs no extra dependency: it is a zip of five XML parts with
inline strings (text cells are never parsed as formulas) and numbers where the
published value is a number; the title, subtitle, release and footnotes go with it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

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

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""  # noqa: E501

_ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""  # noqa: E501

_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Table" sheetId="1" r:id="rId1"/><sheet name="Notes" sheetId="2" r:id="rId2"/></sheets>
</workbook>"""  # noqa: E501

_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""  # noqa: E501

# Style 0: normal; 1: bold (titles, headers); 2: whole number with thousands separator.
_STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<fonts count="3"><font><sz val="11"/><name val="Arial"/></font><font><b/><sz val="11"/><name val="Arial"/></font><font><b/><sz val="14"/><name val="Arial"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/><xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""  # noqa: E501

Cell = str | int | float | None
_TEXT, _BOLD, _WHOLE, _TITLE = 0, 1, 2, 3


def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        name = chr(65 + rem) + name
    return name


def _cell(ref: str, value: Cell, style: int, numeric: bool) -> str:
    if value is None or value == "":
        return ""
    s = f' s="{style}"' if style else ""
    if numeric and isinstance(value, str) and _NUMBER.match(value):
        is_whole = "." not in value
        num_style = f' s="{_WHOLE}"' if is_whole and not style else s
        return f'<c r="{ref}"{num_style}><v>{value}</v></c>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<c r="{ref}"{s}><v>{value}</v></c>'
    text = escape(_INVALID_XML.sub("", str(value)))
    return f'<c r="{ref}" t="inlineStr"{s}><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet(
    rows: Sequence[tuple[Sequence[Cell], int, Sequence[bool]]], widths: Sequence[int]
) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">',
    ]
    if widths:
        out.append("<cols>")
        out.extend(
            f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
            for i, w in enumerate(widths)
        )
        out.append("</cols>")
    out.append("<sheetData>")
    for r, (values, style, numeric) in enumerate(rows, start=1):
        cells = "".join(
            _cell(f"{_col(c)}{r}", v, style, numeric[c] if c < len(numeric) else False)
            for c, v in enumerate(values)
        )
        out.append(f'<row r="{r}">{cells}</row>')
    out.append("</sheetData></worksheet>")
    return "".join(out)


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
    as numbers; symbols stay text."""
    frame = safe(shown)
    numeric = [c in numeric_columns for c in frame.columns]
    no = [False] * len(frame.columns)
    rows: list[tuple[Sequence[Cell], int, Sequence[bool]]] = [
        ((title,), _TITLE, no),
        ((subtitle,), _TEXT, no),
        ((source,), _TEXT, no),
        ((), _TEXT, no),
        (frame.columns, _BOLD, no),
    ]
    rows.extend((tuple(r), _TEXT, numeric) for r in frame.iter_rows())
    widths = [
        min(60, max(10, len(c) + 2, *(len(str(v)) + 2 for v in frame[c].to_list()[:500])))
        for c in frame.columns
    ]
    notes: list[tuple[Sequence[Cell], int, Sequence[bool]]] = [
        (("Notes",), _TITLE, [False]),
        (("Note number", "Note text"), _BOLD, [False, False]),
    ]
    notes.extend(((i, n), _TEXT, [False, False]) for i, n in enumerate(footnotes, start=1))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        z.writestr("xl/styles.xml", _STYLES)
        z.writestr("xl/worksheets/sheet1.xml", _sheet(rows, widths))
        z.writestr("xl/worksheets/sheet2.xml", _sheet(notes, [14, 100]))
    return buf.getvalue()
