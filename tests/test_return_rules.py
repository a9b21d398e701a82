"""DfE's cross-record, working-day, episode-sequence and OC2/OC3 eligibility rules.

Each case starts from a return that passes every rule, changes one thing, and checks
that every table quarantines exactly the rows and codes DfE's rule says, and nothing
else: a rule across records names each record it finds at fault (two overlapping plans:
the later one), so a case lists the codes for every table it touches.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.identifiers import upn_check_letter
from pipelines.returns.cin import read_cin
from pipelines.returns.rules import working_days_before
from pipelines.returns.ssda903 import read_903

AS_AT = date(2026, 6, 30)
Details = dict[str, Any]


def _upn(body: str = "999201700001") -> str:
    return upn_check_letter(body) + body


def reasons(q: pl.DataFrame) -> set[str]:
    return set(q["reasons"].str.split(";").explode().drop_nulls().to_list())


def codes(q: pl.DataFrame) -> set[str]:
    return {r.split(":")[1] for r in reasons(q)}


# ---------------------------------------------------------------------- CIN census ---


def referral(**over: Any) -> Details:
    """One referral of 2025 to 2026 with one of each module, valid under every rule."""
    d: Details = {
        "CINreferralDate": "2025-05-02",
        "ReferralSource": "2A",
        "PrimaryNeedCode": "N1",
        "CINclosureDate": "2025-12-01",
        "ReasonForClosure": "RC1",
        "ReferralNFA": "false",
        "Assessments": [
            {"AssessmentActualStartDate": "2025-05-03", "AssessmentAuthorisationDate": "2025-06-01"}
        ],
        "CINPlanDates": [{"CINPlanStartDate": "2025-06-04", "CINPlanEndDate": "2025-12-01"}],
        "Section47": [
            {"S47ActualStartDate": "2025-05-05", "InitialCPCtarget": "2025-05-26",
             "DateOfInitialCPC": "2025-05-20", "ICPCnotRequired": "false"}
        ],  # fmt: skip
        "ChildProtectionPlans": [
            {"CPPstartDate": "2025-05-20", "CPPendDate": "2025-11-30",
             "InitialCategoryOfAbuse": "NEG", "LatestCategoryOfAbuse": "NEG",
             "NumberOfPreviousCPP": "0"}
        ],  # fmt: skip
    }
    d.update(over)
    return d


OPEN = {"CINclosureDate": None, "ReasonForClosure": None}
MODULES = ("Assessments", "CINPlanDates", "Section47", "ChildProtectionPlans")


def nfa_referral(**over: Any) -> Details:
    """A referral with no further action and no modules, after the first one closed."""
    return {
        "CINreferralDate": "2026-01-10", "ReferralSource": "2A", "CINclosureDate": "2026-01-12",
        "ReasonForClosure": "RC8", "ReferralNFA": "true", **over,
    }  # fmt: skip


def _el(fields: dict[str, Any]) -> str:
    return "".join(f"<{k}>{v}</{k}>" for k, v in fields.items() if v is not None)


def cin_file(referrals: list[Details], year: int = 2026) -> str:
    """A CIN census with one child and these referrals (CINdetails)."""
    dets = ""
    for r in referrals:
        own = {k: v for k, v in r.items() if k not in MODULES}
        # One element a line, so each failure's line names its element.
        mods = "".join(f"\n<{m}>{_el(x)}</{m}>" for m in MODULES for x in r.get(m, []))
        dets += f"<CINdetails>{_el(own)}{mods}</CINdetails>\n"
    ident = {"LAchildID": "LCS0000001", "UPN": _upn(), "PersonBirthDate": "2015-05-01",
             "Sex": "F"}  # fmt: skip
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Message><Header><CollectionDetails>'
        f"<Collection>CIN</Collection><Year>{year}</Year>"
        f"<ReferenceDate>{year}-03-31</ReferenceDate></CollectionDetails>"
        "<Source><SourceLevel>L</SourceLevel><LEA>999</LEA><SoftwareCode>Test</SoftwareCode>"
        "</Source></Header>\n<Children>\n<Child><ChildIdentifiers>"
        f"{_el(ident)}</ChildIdentifiers><ChildCharacteristics><Ethnicity>WBRI</Ethnicity>"
        "<Disabilities><Disability>NONE</Disability></Disabilities></ChildCharacteristics>\n"
        f"{dets}</Child>\n</Children></Message>\n"
    )


def read_cin_file(tmp_path: Path, referrals: list[Details]) -> dict[str, Any]:
    p = tmp_path / "cin_census_2026.xml"
    p.write_text(cin_file(referrals))
    res = read_cin(p, as_at=AS_AT)
    for r in res.values():
        assert r.rows_in == r.accepted.height + r.quarantined.height
    return res


def with_module(module: str, *rows: dict[str, Any], **over: Any) -> Details:
    """The valid referral with `module`'s rows replaced."""
    base = referral(**over)
    base[module] = list(rows)
    return base


def _module(module: str, i: int = 0, **change: Any) -> dict[str, Any]:
    row: dict[str, Any] = copy.deepcopy(referral()[module][i])
    row.update(change)
    return row


CIN_CASES: list[tuple[str, list[Details], dict[str, set[str]]]] = [
    ("8820 referrals overlap",
     [referral(), nfa_referral(CINreferralDate="2025-07-01", CINclosureDate="2025-08-01",
                               ReferralNFA="false", PrimaryNeedCode="N1", ReasonForClosure="RC1")],
     {"cin_census": {"8820"}}),
    ("8815/8816 two open referrals, the open one not the latest",
     [referral(**OPEN), nfa_referral(CINreferralDate="2026-01-10", ReferralNFA="false",
                                     PrimaryNeedCode="N1", **OPEN)],
     {"cin_census": {"8815", "8816", "8820"}}),
    ("8565 conference after closure", [referral(DateOfInitialCPC="2025-12-05")],
     {"cin_census": {"8565"}}),
    ("8831 NFA referral with a conference",
     [referral(), nfa_referral(DateOfInitialCPC="2026-01-12")], {"cin_census": {"8831"}}),
    ("8831/4000/8832 NFA referral with modules", [referral(ReferralNFA="true")],
     {"cin_assessments": {"8831"}, "cin_section47": {"8831"}, "cin_plans": {"4000"},
      "cin_cp_plans": {"8832"}}),
    ("8896 two open assessments",
     [with_module("Assessments", _module("Assessments", AssessmentAuthorisationDate=None),
                  _module("Assessments", AssessmentActualStartDate="2025-05-10",
                          AssessmentAuthorisationDate=None), **OPEN)],
     {"cin_assessments": {"8896"}}),
    ("8867 closed with an open assessment",
     [with_module("Assessments", _module("Assessments", AssessmentAuthorisationDate=None))],
     {"cin_assessments": {"8867"}}),
    ("8565 assessment authorised after closure",
     [with_module("Assessments", _module("Assessments", AssessmentAuthorisationDate="2025-12-10"))],
     {"cin_assessments": {"8565"}}),
    ("4014 CIN plans overlap",
     [with_module("CINPlanDates", _module("CINPlanDates"),
                  _module("CINPlanDates", CINPlanStartDate="2025-07-01",
                          CINPlanEndDate="2025-08-01"))],
     {"cin_plans": {"4014"}}),
    ("4004 two open CIN plans",
     [with_module("CINPlanDates", _module("CINPlanDates", CINPlanEndDate=None),
                  _module("CINPlanDates", CINPlanStartDate="2025-07-01", CINPlanEndDate=None))],
     {"cin_plans": {"4004", "4014"}}),
    ("4001 open CIN plan beside an open CP plan",
     [with_module("ChildProtectionPlans", _module("ChildProtectionPlans", CPPendDate=None),
                  CINPlanDates=[_module("CINPlanDates", CINPlanEndDate=None)])],
     {"cin_plans": {"4001"}}),
    ("8565 CIN plan ended after closure",
     [with_module("CINPlanDates", _module("CINPlanDates", CINPlanEndDate="2025-12-10"))],
     {"cin_plans": {"8565"}}),
    ("8890 section 47 during another",
     [with_module("Section47", _module("Section47"),
                  _module("Section47", S47ActualStartDate="2025-05-10",
                          DateOfInitialCPC="2025-05-27"))],
     {"cin_section47": {"8890"}}),
    ("8839 two open section 47 enquiries",
     [with_module("Section47", _module("Section47", DateOfInitialCPC=None),
                  _module("Section47", S47ActualStartDate="2025-05-10", DateOfInitialCPC=None),
                  **OPEN)],
     {"cin_section47": {"8839", "8890"}}),
    ("8868 closed with an unfinished section 47",
     [with_module("Section47", _module("Section47", DateOfInitialCPC=None))],
     {"cin_section47": {"8868"}}),
    ("8565 conference after closure (section 47)",
     [with_module("Section47", _module("Section47", DateOfInitialCPC="2025-12-02"))],
     {"cin_section47": {"8565"}}),
    ("8940 CP plans overlap",
     [with_module("ChildProtectionPlans", _module("ChildProtectionPlans"),
                  _module("ChildProtectionPlans", CPPstartDate="2025-06-01",
                          CPPendDate="2025-07-01"))],
     {"cin_cp_plans": {"8940"}}),
    ("8935 two open CP plans",
     [with_module("ChildProtectionPlans", _module("ChildProtectionPlans", CPPendDate=None),
                  _module("ChildProtectionPlans", CPPstartDate="2025-06-01", CPPendDate=None))],
     {"cin_cp_plans": {"8935", "8940"}}),
    ("8565 CP plan ended after closure",
     [with_module("ChildProtectionPlans",
                  _module("ChildProtectionPlans", CPPendDate="2025-12-10"))],
     {"cin_cp_plans": {"8565"}}),
]  # fmt: skip
CIN_SOURCES = ("cin_census", "cin_assessments", "cin_plans", "cin_section47", "cin_cp_plans")


def test_valid_cin_return_passes_every_rule(tmp_path: Path) -> None:
    res = read_cin_file(tmp_path, [referral(), nfa_referral()])
    for s in CIN_SOURCES:
        assert res[s].quarantined.height == 0, (s, reasons(res[s].quarantined))
        flags = res[s].accepted["dq_flags"].explode().drop_nulls().to_list()
        assert not [f for f in flags if f.startswith("dfe:")], (s, flags)
    assert res["cin_census"].accepted.height == 2


@pytest.mark.parametrize(("name", "refs", "expected"), CIN_CASES, ids=[c[0] for c in CIN_CASES])
def test_each_cin_cross_record_rule(
    tmp_path: Path, name: str, refs: list[Details], expected: dict[str, set[str]]
) -> None:
    res = read_cin_file(tmp_path, refs)
    got = {s: codes(res[s].quarantined) for s in CIN_SOURCES}
    assert got == {s: expected.get(s, set()) for s in CIN_SOURCES}
    for s in expected:
        # Each failure names the file and the line of the element at fault.
        q = res[s].quarantined
        assert q["file"].str.ends_with("cin_census_2026.xml").all() and (q["line"] >= 5).all()


def test_later_of_two_overlapping_plans_is_the_one_quarantined(tmp_path: Path) -> None:
    refs = [with_module("CINPlanDates", _module("CINPlanDates"),
                        _module("CINPlanDates", CINPlanStartDate="2025-07-01",
                                CINPlanEndDate="2025-08-01"))]  # fmt: skip
    res = read_cin_file(tmp_path, refs)
    assert res["cin_plans"].quarantined["cin_plan_start"].to_list() == ["2025-07-01"]
    assert res["cin_plans"].accepted["cin_plan_start"].to_list() == [date(2025, 6, 4)]


# --- Working days: England and Wales bank holidays, as DfE's validator counts them.


def test_working_days_before_skips_weekends_and_bank_holidays() -> None:
    # 31 March 2026 is a Tuesday; 45 working days back (counting it) is 28 January.
    assert working_days_before(date(2026, 3, 31), 45) == date(2026, 1, 28)
    assert working_days_before(date(2026, 3, 31), 15) == date(2026, 3, 11)
    # 2024: Good Friday 29 March and Easter Monday 1 April are not working days.
    assert working_days_before(date(2024, 3, 31), 45) == date(2024, 1, 29)
    assert working_days_before(date(2024, 4, 1), 1) == date(2024, 4, 2)
    # A weekend day rolls forward to the next working day (1 April 2023 was a Saturday).
    assert working_days_before(date(2023, 4, 1), 1) == date(2023, 4, 3)


def _flags(res: dict[str, Any], source: str) -> list[str]:
    return [f for f in res[source].accepted["dq_flags"].explode().drop_nulls().to_list()
            if f.startswith("dfe:")]  # fmt: skip


@pytest.mark.parametrize(("start", "flagged"), [("2026-01-27", True), ("2026-01-28", False)])
def test_8670Q_open_assessment_45_working_days(tmp_path: Path, start: str, flagged: bool) -> None:
    a = _module("Assessments", AssessmentActualStartDate=start, AssessmentAuthorisationDate=None)
    res = read_cin_file(tmp_path, [with_module("Assessments", a, **OPEN)])
    # A query: the row is kept and the query noted, never quarantined.
    assert res["cin_assessments"].quarantined.height == 0
    expect = ["dfe:8670Q:AssessmentActualStartDate"] if flagged else []
    assert _flags(res, "cin_assessments") == expect


@pytest.mark.parametrize(("start", "flagged"), [("2026-03-10", True), ("2026-03-11", False)])
def test_8675Q_section47_without_conference_15_working_days(
    tmp_path: Path, start: str, flagged: bool
) -> None:
    s47 = _module("Section47", S47ActualStartDate=start, InitialCPCtarget=None,
                  DateOfInitialCPC=None)  # fmt: skip
    res = read_cin_file(tmp_path, [with_module("Section47", s47, **OPEN)])
    assert res["cin_section47"].quarantined.height == 0
    assert _flags(res, "cin_section47") == (["dfe:8675Q:S47ActualStartDate"] if flagged else [])


@pytest.mark.parametrize(("ref", "flagged"), [("2025-03-31", True), ("2025-04-01", False)])
def test_8569Q_nfa_referral_before_the_year(tmp_path: Path, ref: str, flagged: bool) -> None:
    res = read_cin_file(
        tmp_path,
        [nfa_referral(CINreferralDate=ref, CINclosureDate="2025-04-02"),
         referral(CINreferralDate="2025-05-02")],
    )  # fmt: skip
    assert res["cin_census"].quarantined.height == 0
    assert _flags(res, "cin_census") == (["dfe:8569Q:ReferralNFA"] if flagged else [])


# ------------------------------------------------------------------------- SSDA903 ---

# 2025 to 2026. C1: 17, looked after from June 2025 (two episodes, a placement change),
# missing once; C2: 11, looked after since 2023 (so in OC2); C3: a care leaver of 19.
HEADER = [
    {"CHILD": "C1", "SEX": "F", "DOB": "01/05/2008", "ETHNIC": "WBRI", "UPN": _upn(),
     "MOTHER": "0", "MC_DOB": ""},
    {"CHILD": "C2", "SEX": "M", "DOB": "01/06/2014", "ETHNIC": "WBRI", "UPN": "UN1",
     "MOTHER": "", "MC_DOB": ""},
    {"CHILD": "C3", "SEX": "M", "DOB": "01/10/2006", "ETHNIC": "WBRI", "UPN": "UN1",
     "MOTHER": "", "MC_DOB": ""},
]  # fmt: skip
_EP = {"CHILD": "C1", "DECOM": "01/06/2025", "RNE": "S", "LS": "C2", "CIN": "N1", "PLACE": "U1",
       "PLACE_PROVIDER": "PR1", "DEC": "01/09/2025", "REC": "X1", "REASON_PLACE_CHANGE": "",
       "HOME_POST": "XM1 1AA", "PL_POST": "XM2 2BB", "URN": ""}  # fmt: skip
EPISODES = [
    _EP,
    {**_EP, "DECOM": "01/09/2025", "RNE": "P", "PLACE": "U4", "DEC": "", "REC": "",
     "REASON_PLACE_CHANGE": "CARPL", "PL_POST": "XM3 3CC"},
    {**_EP, "CHILD": "C2", "DECOM": "01/01/2023", "DEC": "", "REC": ""},
]  # fmt: skip
OC2 = [{"CHILD": "C2", "DOB": "01/06/2014", "SDQ_SCORE": "10", "SDQ_REASON": "", "CONVICTED": "0",
        "HEALTH_CHECK": "1", "IMMUNISATIONS": "1", "TEETH_CHECK": "1", "HEALTH_ASSESSMENT": "1",
        "SUBSTANCE_MISUSE": "0", "INTERVENTION_RECEIVED": "", "INTERVENTION_OFFERED": ""}]  # fmt: skip
OC3 = [{"CHILD": "C3", "DOB": "01/10/2006", "IN_TOUCH": "YES", "ACTIV": "F2", "ACCOM": "B1"}]
MISSING = [{"CHILD": "C1", "DOB": "01/05/2008", "MISSING": "M", "MIS_START": "02/07/2025",
            "MIS_END": "03/07/2025"}]  # fmt: skip
TABLES_903 = {"header": HEADER, "episodes": EPISODES, "oc2": OC2, "oc3": OC3, "missing": MISSING}
SOURCES_903 = {"header": "ssda903_header", "episodes": "ssda903_episodes", "oc2": "ssda903_oc2",
               "oc3": "ssda903_oc3", "missing": "ssda903_missing"}  # fmt: skip


def return_903(tmp_path: Path, **tables: list[dict[str, str]]) -> dict[str, Any]:
    d = tmp_path / "ssda903" / "2026"
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in {**TABLES_903, **tables}.items():
        pl.DataFrame(rows, schema=list(rows[0]) if rows else None).write_csv(d / f"{name}.csv")
    res = read_903(d, as_at=AS_AT)
    for r in res.values():
        assert r.rows_in == r.accepted.height + r.quarantined.height
    return res


def eps(*changes: dict[str, str]) -> list[dict[str, str]]:
    """The valid episodes, the i-th changed by the i-th dict."""
    return [{**e, **(changes[i] if i < len(changes) else {})} for i, e in enumerate(EPISODES)]


# (name, tables changed, {table: (line, codes)}): the rows (file lines) and codes at fault.
CASES_903: list[tuple[str, dict[str, list[dict[str, str]]], dict[str, dict[int, set[str]]]]] = [
    ("142 earlier episode not ended", {"episodes": eps({"DEC": "", "REC": ""})},
     {"episodes": {2: {"142"}, 3: {"433"}}}),
    ("501 next episode starts before the previous ends",
     {"episodes": eps({}, {"DECOM": "15/08/2025"})},
     {"episodes": {2: {"388"}, 3: {"501", "433"}}}),
    ("388 last episode ceased with X1", {"episodes": eps({}, {"DEC": "01/12/2025", "REC": "X1"})},
     {"episodes": {3: {"388"}}}),
    ("388/432 a ceased episode followed the same day",
     {"episodes": eps({"REC": "E11"})}, {"episodes": {2: {"388"}, 3: {"432"}}}),
    ("431 started to be looked after the day the last ended",
     {"episodes": eps({}, {"RNE": "S"})}, {"episodes": {3: {"431"}}}),
    ("433 continuation not starting the day the last ended",
     {"episodes": eps({}, {"DECOM": "02/09/2025"})},
     {"episodes": {2: {"388"}, 3: {"433"}}}),
    ("434 legal status change but the placement changed too", {"episodes": eps({}, {"RNE": "L"})},
     {"episodes": {3: {"434"}}}),
    ("435 placement change but nothing changed",
     {"episodes": eps({}, {"PLACE": "U1", "PL_POST": "XM2 2BB"})}, {"episodes": {3: {"435"}}}),
    ("436 both changed but the legal status did not", {"episodes": eps({}, {"RNE": "U"})},
     {"episodes": {3: {"436"}}}),
    ("437 died but further episodes", {"episodes": eps({"REC": "E2"})},
     {"episodes": {2: {"437", "388"}, 3: {"432"}}}),
    ("357 first episode not S", {"episodes": eps({"RNE": "P"})}, {"episodes": {2: {"357"}}}),
    ("385 ceased after the year", {"episodes": eps({}, {"DEC": "01/05/2026", "REC": "E11"})},
     {"episodes": {3: {"385"}}}),
    ("358 youth justice legal status under 10", {"episodes": eps({}, {}, {"LS": "J1"})},
     {"episodes": {4: {"358"}}}),
    ("380 care starting in a temporary placement",
     {"episodes": eps({"PLACE": "T1", "PLACE_PROVIDER": ""})}, {"episodes": {2: {"380"}}}),
    ("381 care ending in a temporary placement",
     {"episodes": eps({}, {"PLACE": "T2", "PLACE_PROVIDER": "", "DEC": "01/12/2025",
                           "REC": "E11"})}, {"episodes": {3: {"381"}}}),
    ("550 PR0 beyond P1", {"episodes": eps({"PLACE_PROVIDER": "PR0"})},
     {"episodes": {2: {"550"}}}),
    ("527 PR1 with R2", {"episodes": eps({"PLACE": "R2"})}, {"episodes": {2: {"527"}}}),
    ("529 PR3 with foster care", {"episodes": eps({"PLACE_PROVIDER": "PR3"})},
     {"episodes": {2: {"529"}}}),
    ("185 SDQ for a child not looked after 12 months",
     {"oc2": [{**{k: "" for k in OC2[0]}, "CHILD": "C1", "DOB": "01/05/2008", "SDQ_SCORE": "10"}]},
     {"oc2": {2: {"185"}}}),
    ("198 SDQ reason for a child not looked after 12 months",
     {"oc2": [{**{k: "" for k in OC2[0]}, "CHILD": "C1", "DOB": "01/05/2008",
               "SDQ_REASON": "SDQ1"}]}, {"oc2": {2: {"198"}}}),
    ("190 OC2 items for a child not looked after 12 months",
     {"oc2": [{**{k: "" for k in OC2[0]}, "CHILD": "C1", "DOB": "01/05/2008",
               "CONVICTED": "0"}]}, {"oc2": {2: {"190"}}}),
    ("191 OC2 items missing for a child looked after 12 months",
     {"oc2": [{**OC2[0], "IMMUNISATIONS": ""}]}, {"oc2": {2: {"191"}}}),
    ("190 a child whose care began with a short break (V3) in the year",
     {"episodes": eps({}, {}, {"DECOM": "01/01/2025", "LS": "V3", "DEC": "01/05/2025",
                               "REC": "E11"}) + [{**EPISODES[2], "DECOM": "01/06/2025"}]},
     {"oc2": {2: {"185", "190"}}}),
    ("391 care leaver too young",
     {"header": [*HEADER[:2], {**HEADER[2], "DOB": "01/10/2010"}],
      "oc3": [{**OC3[0], "DOB": "01/10/2010"}]}, {"oc3": {2: {"391"}}}),
    ("391 care leaver too old",
     {"header": [*HEADER[:2], {**HEADER[2], "DOB": "01/10/2002"}],
      "oc3": [{**OC3[0], "DOB": "01/10/2002"}]}, {"oc3": {2: {"391"}}}),
    ("1007 care leaver looked after on their 17th birthday",
     {"episodes": eps({"DECOM": "01/04/2025"}),
      "oc3": [*OC3, {**OC3[0], "CHILD": "C1", "DOB": "01/05/2008"}]}, {"oc3": {3: {"1007"}}}),
    ("581 missing before care began",
     {"missing": [{**MISSING[0], "MIS_START": "01/05/2025", "MIS_END": "02/05/2025"}]},
     {"missing": {2: {"581"}}}),
    ("574 missing episodes overlap",
     {"missing": [{**MISSING[0], "MIS_END": "05/07/2025"},
                  {**MISSING[0], "MIS_START": "04/07/2025", "MIS_END": "06/07/2025"}]},
     {"missing": {3: {"574"}}}),
]  # fmt: skip


def test_valid_903_passes_every_rule(tmp_path: Path) -> None:
    res = return_903(tmp_path)
    for table, source in SOURCES_903.items():
        assert res[source].quarantined.height == 0, (table, reasons(res[source].quarantined))
        assert res[source].accepted.height == len(TABLES_903[table])


@pytest.mark.parametrize(("name", "tables", "expected"), CASES_903, ids=[c[0] for c in CASES_903])
def test_each_903_cross_record_rule(
    tmp_path: Path,
    name: str,
    tables: dict[str, list[dict[str, str]]],
    expected: dict[str, dict[int, set[str]]],
) -> None:
    res = return_903(tmp_path, **tables)
    for table, source in SOURCES_903.items():
        q = res[source].quarantined
        got = {line: {r.split(":")[1] for r in rs.split(";")}
               for line, rs in zip(q["line"], q["reasons"], strict=True)}  # fmt: skip
        assert got == expected.get(table, {}), table
        # Every failure names its file (the table's CSV) and row.
        assert q["file"].str.ends_with(f"2026/{table}.csv").all()


# --- Against last year's return (502, 503A-F): C2's episode open at 31 March 2025.


def _last_year(tmp_path: Path, **change: str) -> None:
    d = tmp_path / "ssda903" / "2025"
    d.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(HEADER).write_csv(d / "header.csv")
    pl.DataFrame([{**EPISODES[2], **change}]).write_csv(d / "episodes.csv")


@pytest.mark.parametrize(
    ("last", "this", "expected"),
    [
        ({}, {}, set()),
        # Its start moved: 502, and this year's episode is not in last year's return (562).
        ({}, {"DECOM": "02/01/2023"}, {"502", "562"}),
        ({}, {"LS": "C1"}, {"503B"}),
        ({}, {"CIN": "N2"}, {"503C"}),
        ({}, {"PLACE": "U2"}, {"503D"}),
        ({}, {"PLACE_PROVIDER": "PR2"}, {"503E"}),
        ({}, {"URN": "SC123456"}, {"503F"}),
        # Z1 was replaced by Z11-Z14 in 2025 to 2026: a carried episode may be recoded.
        ({"PLACE": "Z1", "PLACE_PROVIDER": ""}, {"PLACE": "Z11", "PLACE_PROVIDER": ""}, set()),
        ({"PLACE": "Z1", "PLACE_PROVIDER": ""}, {"PLACE": "U1", "PLACE_PROVIDER": ""}, {"503D"}),
        # Closed by 31 March: nothing to carry over.
        ({"DEC": "01/03/2025", "REC": "E11"}, {"LS": "C1"}, set()),
    ],
)
def test_first_episode_continues_last_years_open_episode(
    tmp_path: Path, last: dict[str, str], this: dict[str, str], expected: set[str]
) -> None:
    _last_year(tmp_path, **last)
    res = return_903(tmp_path, episodes=eps({}, {}, this))
    q = res["ssda903_episodes"].quarantined
    assert codes(q) == expected
    if expected:
        assert q["line"].to_list() == [4]  # C2's episode, the third row of episodes.csv


def test_episodes_begun_before_the_year_must_be_in_last_years_return(tmp_path: Path) -> None:
    """562: an episode starting before 1 April must be in last year's return; NoE: a child
    whose care began before 1 April must have episodes there at all. C1's two episodes
    start this year, so neither rule applies to them."""
    _last_year(tmp_path)
    # C1's first episode now began last year, but last year's return has only C2.
    episodes = eps({"DECOM": "01/02/2025"})
    res = return_903(tmp_path, episodes=episodes)
    q = res["ssda903_episodes"].quarantined
    got = {line: {r.split(":")[1] for r in rs.split(";")}
           for line, rs in zip(q["line"], q["reasons"], strict=True)}  # fmt: skip
    assert got == {2: {"562", "NoE"}}
    # Last year's return holds C1's episode too: both rules are satisfied.
    d = tmp_path / "ssda903" / "2025"
    last = [{**EPISODES[0], "DECOM": "01/02/2025", "DEC": "", "REC": ""}, EPISODES[2]]
    pl.DataFrame(last).write_csv(d / "episodes.csv")
    q = return_903(tmp_path, episodes=episodes)["ssda903_episodes"].quarantined
    assert not ({"562", "NoE"} & codes(q)), q


def test_without_last_years_return_the_carried_rules_do_not_run(tmp_path: Path) -> None:
    res = return_903(tmp_path, episodes=eps({}, {}, {"LS": "C1", "DECOM": "02/01/2023"}))
    assert res["ssda903_episodes"].quarantined.height == 0
