"""The CIN census XML: read, check the header, flatten, validate.

A file-level problem (not XML, not a CIN census, no or unknown collection year, a year
whose rules are not implemented, no children) raises `SourceFileError` naming the file.
Everything else is row-level: one row per CINdetails, Assessments, CINPlanDates,
Section47 and ChildProtectionPlans element, each carrying its child's identifiers and
characteristics and its referral's date, so each row links and validates on its own.
A row's key is `<file stem>:<line of its opening tag>`.

The parser is the standard library's expat, which reports line numbers and does not
fetch external entities.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from xml.parsers import expat

import polars as pl

from pipelines.ingest import IngestResult, SourceFileError
from pipelines.returns.check import dfe_checked, to_result
from pipelines.returns.context import cin_context
from pipelines.returns.tables import (
    CHILD_FIELDS,
    CIN_CHILD,
    CIN_MODULES,
    CIN_TABLE_FIELDS,
    DATE_CIN,
    MODULE_FIELDS,
)
from pipelines.returns.years import CIN_YEARS, YearRules, implemented

DATE_FIELDS = [
    "PersonBirthDate", "ExpectedPersonBirthDate", "PersonDeathDate", "CINreferralDate",
    "CINclosureDate", "DateOfInitialCPC", "AssessmentActualStartDate",
    "AssessmentInternalReviewDate", "AssessmentAuthorisationDate", "CINPlanStartDate",
    "CINPlanEndDate", "S47ActualStartDate", "InitialCPCtarget", "CPPstartDate", "CPPendDate",
    "@closure",
]  # fmt: skip
# Repeated elements kept ';'-separated under one field.
_LISTS = {"Disability": "Disabilities", "AssessmentFactors": "AssessmentFactors",
          "CPPreviewDate": "CPPreviewDate"}  # fmt: skip


@dataclass
class Node:
    tag: str
    line: int
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    def value(self, path: str) -> str | None:
        node: Node | None = self
        for part in path.split("/"):
            node = node.find(part) if node else None
        if node is None:
            return None
        return node.text.strip() or None

    def walk(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            yield from c.walk()


def parse(path: Path) -> Node:
    data = path.read_bytes()
    if not data.strip():
        raise SourceFileError(f"{path}: the file is empty")
    root = Node("#document", 0)
    stack = [root]
    p = expat.ParserCreate()

    def start(tag: str, _attrs: dict[str, str]) -> None:
        n = Node(tag.split(":")[-1], p.CurrentLineNumber)
        stack[-1].children.append(n)
        stack.append(n)

    def end(_tag: str) -> None:
        stack.pop()

    def text(s: str) -> None:
        stack[-1].text += s

    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = text
    # No external entities, no DTD fetches: a return is data, never instructions.
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        p.Parse(data, True)
    except expat.ExpatError as e:
        raise SourceFileError(
            f"{path}: not a well-formed XML file (line {e.lineno}: {expat.ErrorString(e.code)})"
        ) from None
    if not root.children:
        raise SourceFileError(f"{path}: no XML elements")
    return root.children[0]


@dataclass(frozen=True)
class CinHeader:
    collection: str | None
    year: int | None
    reference_date: str | None
    lea: str | None
    software: str | None


def header(path: Path, msg: Node) -> CinHeader:
    h = msg.find("Header")
    if h is None:
        raise SourceFileError(f"{path}: no Header element: not a CIN census file")
    year = h.value("CollectionDetails/Year")
    return CinHeader(
        h.value("CollectionDetails/Collection"),
        int(year) if year and year.isdigit() else None,
        h.value("CollectionDetails/ReferenceDate"),
        h.value("Source/LEA"),
        h.value("Source/SoftwareCode"),
    )


def year_rules(path: Path, hd: CinHeader) -> YearRules:
    """The rules of the file's own collection year, or a file-level problem."""
    if hd.collection != "CIN":
        raise SourceFileError(
            f"{path}: Header Collection is {hd.collection!r}, expected 'CIN' (the CIN census)"
        )
    if hd.year is None:
        raise SourceFileError(f"{path}: Header has no collection Year")
    if hd.year not in CIN_YEARS:
        raise SourceFileError(
            f"{path}: a CIN census for {hd.year - 1} to {hd.year}; the rules of that collection "
            f"year are not implemented (implemented: {implemented(CIN_YEARS)}), so the file is "
            "not validated against another year's rules"
        )
    y = CIN_YEARS[hd.year]
    if hd.reference_date and hd.reference_date != y.end.isoformat():
        raise SourceFileError(
            f"{path}: Header ReferenceDate {hd.reference_date} is not 31 March {hd.year}, "
            "the end of the collection year it names"
        )
    return y


def flatten(path: Path, msg: Node) -> dict[str, pl.DataFrame]:
    """One frame of raw text per CIN table (DfE's field names), `@line` and `@child`."""
    children = msg.find("Children")
    kids = [c for c in (children.children if children else []) if c.tag == "Child"]
    if not kids:
        raise SourceFileError(f"{path}: no Child elements")
    rows: dict[str, list[dict[str, str | int | bool | None]]] = {m: [] for m in CIN_MODULES}
    childs = [_fields(kid, ("ChildIdentifiers", "ChildCharacteristics")) for kid in kids]
    seen = Counter(c.get("LAchildID") for c in childs)
    for kid, child in zip(kids, childs, strict=True):
        # Rule 8510: the same LA child ID in more than one Child element.
        child["@dup"] = child.get("LAchildID") is not None and seen[child.get("LAchildID")] > 1
        for det in (c for c in kid.children if c.tag == "CINdetails"):
            own = _fields(det, ())
            # Every element carries its referral's line, closure and NFA flag: the
            # rules across one referral's modules read them (pipelines/returns/context).
            referral = {
                "@details": det.line,
                "@closure": own.get("CINclosureDate"),
                "@nfa": own.get("ReferralNFA"),
            }
            rows["CINdetails"].append({**child, **own, **referral, "@line": det.line})
            ref = own.get("CINreferralDate")
            for module in MODULE_FIELDS:
                if module == "CINdetails":
                    continue
                for m in (c for c in det.children if c.tag == module):
                    rows[module].append(
                        {**child, **_fields(m, ()), "CINreferralDate": ref, **referral}
                        | {"@line": m.line}
                    )
    out = {}
    for module, fields in MODULE_FIELDS.items():
        names = [*CHILD_FIELDS, *dict.fromkeys(("CINreferralDate", *fields))]
        schema = {n: pl.Utf8 for n in names} | {
            "@line": pl.Int64,
            "@dup": pl.Boolean,
            "@details": pl.Int64,
            "@closure": pl.Utf8,
            "@nfa": pl.Utf8,
        }
        out[module] = pl.DataFrame(rows[module], schema=schema)
    return out


def _fields(node: Node, groups: tuple[str, ...]) -> dict[str, str | int | bool | None]:
    """Leaf values of `node` and of its `groups` (one level of leaves each); repeated
    elements joined with ';'."""
    out: dict[str, str | int | bool | None] = {}
    sources = [node, *(g for g in (node.find(x) for x in groups) if g is not None)]
    for src in sources:
        for leaf in src.children:
            if leaf.children and leaf.tag not in ("Disabilities", "FactorsIdentifiedAtAssessment",
                                                  "Reviews"):  # fmt: skip
                continue
            if leaf.children:
                for sub in leaf.walk():
                    name = _LISTS.get(sub.tag)
                    if name and sub.text.strip():
                        prev = out.get(name)
                        out[name] = f"{prev};{sub.text.strip()}" if prev else sub.text.strip()
                continue
            out[leaf.tag] = leaf.text.strip() or None
    return out


def read_cin(path: Path, *, as_at: date) -> dict[str, IngestResult]:
    """Every CIN table of one file, validated against its collection year's rules."""
    msg = parse(path)
    hd = header(path, msg)
    y = year_rules(path, hd)
    frames = cin_context(flatten(path, msg), y, DATE_CIN)
    out: dict[str, IngestResult] = {}
    for module, raw in frames.items():
        # Sex is one field whatever the year calls it (GenderCurrent until 2023 to 2024);
        # the year's rule 4180 reads `Sex` against that year's codes.
        if y.cin_sex_element == "GenderCurrent":
            raw = raw.with_columns(pl.col("GenderCurrent").alias("Sex"))
        checked = dfe_checked(raw, "cin", module, y, DATE_FIELDS, DATE_CIN)
        source = CIN_MODULES[module]
        out[source] = to_result(
            checked,
            source,
            CIN_CHILD + CIN_TABLE_FIELDS[module],
            file=path,
            row_key=pl.format("{}:{}", pl.lit(path.stem), pl.col("@line")),
            year=y.year,
            as_at=as_at,
        )
    return out
