"""The statutory returns as sources: the CIN census XML and the SSDA903 CSVs.

Hand-made files (one valid child, then one change per case) prove each rule fires with
DfE's code and nothing else; a generated county proves the synthetic returns are valid,
keyed as the truth keys them, and flow through ingest like any other source.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipelines.derive import LAC_MEASURES, ZoneBFrames
from pipelines.identifiers import upn_check_letter
from pipelines.ingest import SourceFileError, ingest_all
from pipelines.reference import Reference
from pipelines.returns.cin import read_cin
from pipelines.returns.ingest import ingest_returns
from pipelines.returns.rules import catalogue
from pipelines.returns.ssda903 import read_903

AS_AT = date(2026, 6, 30)


def _upn(body: str = "999201700001") -> str:
    return upn_check_letter(body) + body


CHILD = {
    "LAchildID": "LCS0000001",
    "UPN": _upn(),
    "PersonBirthDate": "2015-05-01",
    "Sex": None,  # filled per year
    "Ethnicity": "WBRI",
    "Disability": "NONE",
}
DETAILS = {
    "CINreferralDate": "{y0}-05-02",
    "ReferralSource": "2A",
    "PrimaryNeedCode": "N1",
    "CINclosureDate": "{y0}-12-01",
    "ReasonForClosure": "RC1",
    "ReferralNFA": "false",
}
ASSESSMENT = {
    "AssessmentActualStartDate": "{y0}-05-03",
    "AssessmentAuthorisationDate": "{y0}-06-01",
}
PLAN = {"CINPlanStartDate": "{y0}-06-04", "CINPlanEndDate": "{y0}-12-01"}
S47 = {"S47ActualStartDate": "{y0}-05-05", "InitialCPCtarget": "{y0}-05-26",
       "DateOfInitialCPC": "{y0}-05-20", "ICPCnotRequired": "false"}  # fmt: skip
CPP = {"CPPstartDate": "{y0}-05-20", "CPPendDate": "{y0}-11-30", "InitialCategoryOfAbuse": "NEG",
       "LatestCategoryOfAbuse": "NEG", "NumberOfPreviousCPP": "0"}  # fmt: skip


def cin_xml(year: int = 2026, change: dict[str, str | None] | None = None,
            header: dict[str, str] | None = None, children: int = 1) -> str:  # fmt: skip
    """A CIN census with `children` copies of one valid child; `change` overrides any
    field (None removes it)."""
    change = change or {}
    y0 = year - 1
    sex_el = "Sex" if year >= 2025 else "GenderCurrent"
    hd = {
        "Collection": "CIN",
        "Year": str(year),
        "ReferenceDate": f"{year}-03-31",
        **(header or {}),
    }

    def el(fields: dict[str, str | None]) -> str:
        out = []
        for k, v in fields.items():
            v = change.get(k, v)
            if v is not None:
                out.append(f"<{k}>{v.format(y0=y0)}</{k}>")
        return "".join(out)

    child = dict(CHILD)
    child.pop("Sex")
    ident = {k: child[k] for k in ("LAchildID", "UPN", "PersonBirthDate")}
    ident[sex_el] = "F" if year >= 2025 else "2"
    if "Sex" in change:
        ident[sex_el] = change["Sex"]  # type: ignore[assignment]
    kids = "".join(
        "<Child><ChildIdentifiers>" + el(ident) + "</ChildIdentifiers>"
        "<ChildCharacteristics>"
        + el({"Ethnicity": child["Ethnicity"]})
        + "<Disabilities>"
        + el({"Disability": child["Disability"]})
        + "</Disabilities>"
        "</ChildCharacteristics><CINdetails>"
        + el(DETAILS)
        + "<Assessments>"
        + el(ASSESSMENT)
        + "</Assessments>"
        + "<CINPlanDates>"
        + el(PLAN)
        + "</CINPlanDates>"
        + "<Section47>"
        + el(S47)
        + "</Section47>"
        + "<ChildProtectionPlans>"
        + el(CPP)
        + "</ChildProtectionPlans>"
        "</CINdetails></Child>\n"
        for _ in range(children)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Message><Header><CollectionDetails>'
        f"<Collection>{hd['Collection']}</Collection><Year>{hd['Year']}</Year>"
        f"<ReferenceDate>{hd['ReferenceDate']}</ReferenceDate></CollectionDetails>"
        "<Source><SourceLevel>L</SourceLevel><LEA>999</LEA><SoftwareCode>Test</SoftwareCode>"
        f"</Source></Header>\n<Children>\n{kids}</Children></Message>\n"
    )


def read_one(tmp_path: Path, xml: str, year: int = 2026) -> dict[str, pl.DataFrame]:
    p = tmp_path / f"cin_census_{year}.xml"
    p.write_text(xml)
    res = read_cin(p, as_at=AS_AT)
    for r in res.values():
        assert r.rows_in == r.accepted.height + r.quarantined.height
    return {s: r.quarantined for s, r in res.items()} | {
        f"{s}+": r.accepted for s, r in res.items()
    }


def reasons(q: pl.DataFrame) -> set[str]:
    return set(q["reasons"].str.split(";").explode().drop_nulls().to_list())


def test_valid_cin_file_is_accepted_whole(tmp_path: Path) -> None:
    out = read_one(tmp_path, cin_xml())
    for source in ("cin_census", "cin_assessments", "cin_plans", "cin_section47", "cin_cp_plans"):
        assert out[source].height == 0, (source, out[source]["reasons"].to_list())
        acc = out[f"{source}+"]
        assert acc.height == 1
        row = acc.row(0, named=True)
        assert row["lcs_person_id"] == "LCS0000001" and row["sex"] == "F"
        assert row["dob"] == date(2015, 5, 1) and row["collection_year"] == 2026
        assert row["referral_date"] == date(2025, 5, 2)
    # Keys name the file and the line of the element, as the generator's truth does.
    assert out["cin_census+"]["record_id"].str.starts_with("cin_census_2026:").all()


# (change, source table, DfE code) : each case breaks exactly one rule.
CIN_CASES = [
    ({"LAchildID": None}, "cin_census", "dfe:8500:LAchildID"),
    ({"LAchildID": "LCS-01"}, "cin_census", "dfe:1580:LAchildID"),
    ({"LAchildID": "L" * 21}, "cin_census", "dfe:1570:LAchildID"),
    ({"Sex": "X"}, "cin_census", "dfe:4180:Sex"),
    ({"Ethnicity": "XXXX"}, "cin_census", "dfe:4220:Ethnicity"),
    ({"PersonBirthDate": "2026-04-02"}, "cin_census", "dfe:8520:PersonBirthDate"),
    ({"PersonBirthDate": "2015-13-45"}, "cin_census", "schema:bad_date:PersonBirthDate"),
    ({"Disability": "WINGS"}, "cin_census", "dfe:8540:Disabilities"),
    ({"CINreferralDate": None}, "cin_census", "dfe:8600:CINreferralDate"),
    ({"ReferralSource": "ZZ"}, "cin_census", "dfe:8866:ReferralSource"),
    ({"PrimaryNeedCode": "N12"}, "cin_census", "dfe:8650:PrimaryNeedCode"),
    ({"PrimaryNeedCode": None}, "cin_census", "dfe:8610:PrimaryNeedCode"),
    ({"ReasonForClosure": "RC99"}, "cin_census", "dfe:8640:ReasonForClosure"),
    ({"CINclosureDate": "2026-04-02"}, "cin_census", "dfe:8620:CINclosureDate"),
    ({"CINclosureDate": "{y0}-05-01"}, "cin_census", "dfe:8630:CINclosureDate"),
    ({"ReasonForClosure": None}, "cin_census", "dfe:8805:ReasonForClosure"),
    ({"ReferralNFA": "maybe"}, "cin_census", "dfe:8568:ReferralNFA"),
    ({"AssessmentActualStartDate": "{y0}-05-01"}, "cin_assessments",
     "dfe:1103:AssessmentActualStartDate"),
    ({"AssessmentAuthorisationDate": "{y0}-05-02"}, "cin_assessments",
     "dfe:8608:AssessmentActualStartDate"),
    ({"CINPlanEndDate": "{y0}-06-01"}, "cin_plans", "dfe:4011:CINPlanEndDate"),
    ({"CINPlanStartDate": "{y0}-05-01", "CINPlanEndDate": None}, "cin_plans",
     "dfe:4015:CINPlanStartDate"),
    ({"S47ActualStartDate": "{y0}-05-01"}, "cin_section47", "dfe:2889:S47ActualStartDate"),
    ({"DateOfInitialCPC": "{y0}-05-04"}, "cin_section47", "dfe:8615:S47ActualStartDate"),
    ({"DateOfInitialCPC": "2025-05-24"}, "cin_section47", "dfe:8875:DateOfInitialCPC"),
    ({"CPPendDate": "{y0}-05-19"}, "cin_cp_plans", "dfe:8925:CPPendDate"),
    ({"CPPendDate": "{y0}-05-20"}, "cin_cp_plans", "dfe:8840:CPPendDate"),
    ({"InitialCategoryOfAbuse": "BAD"}, "cin_cp_plans", "dfe:8905:InitialCategoryOfAbuse"),
    ({"NumberOfPreviousCPP": None}, "cin_cp_plans", "dfe:8730:NumberOfPreviousCPP"),
    ({"CPPstartDate": "{y0}-05-01"}, "cin_cp_plans", "dfe:1105:CPPstartDate"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "source", "code"), CIN_CASES, ids=[c[2] for c in CIN_CASES])
def test_each_cin_rule_quarantines_with_its_code(
    tmp_path: Path, change: dict[str, str | None], source: str, code: str
) -> None:
    out = read_one(tmp_path, cin_xml(change=change))
    assert out[source].height == 1
    assert code in reasons(out[source])
    # The row's file and line are kept so the council can find it.
    assert out[source]["line"][0] > 2 and out[source]["file"][0].endswith(".xml")


def test_duplicate_child_rule_8510_and_queries_keep_the_row(tmp_path: Path) -> None:
    out = read_one(tmp_path, cin_xml(children=2))
    # Two copies of one child also overlap each other's referral (8820), as DfE's would.
    assert out["cin_census"].height == 2
    assert reasons(out["cin_census"]) == {"dfe:8510:LAchildID", "dfe:8820:CINreferralDate"}
    # 8525Q is a query: the row is kept, the query noted.
    out = read_one(tmp_path, cin_xml(change={"ExpectedPersonBirthDate": "2015-05-01"}).replace(
        "<PersonBirthDate>", "<ExpectedPersonBirthDate>2015-05-01</ExpectedPersonBirthDate>"
        "<PersonBirthDate>"))  # fmt: skip
    assert out["cin_census"].height == 0
    assert "dfe:8525Q:PersonBirthDate" in out["cin_census+"]["dq_flags"][0].to_list()


def test_malformed_upn_is_blanked_and_flagged_not_quarantined(tmp_path: Path) -> None:
    bad = "A" + _upn()[1:]  # wrong check letter
    assert bad != _upn()
    out = read_one(tmp_path, cin_xml(change={"UPN": bad}))
    acc = out["cin_census+"]
    assert out["cin_census"].height == 0 and acc["upn"][0] is None
    assert "dfe:1510:UPN" in acc["dq_flags"][0].to_list()


def test_cin_file_from_another_collection_year(tmp_path: Path) -> None:
    # 2023 to 2024: GenderCurrent 1/2 is right, and RC9 is a closure reason.
    out = read_one(tmp_path, cin_xml(2024, change={"ReasonForClosure": "RC9"}), 2024)
    assert out["cin_census"].height == 0
    assert out["cin_census+"]["sex"][0] == "F" and out["cin_census+"]["collection_year"][0] == 2024
    # 2021 to 2022 had no RC9: the same file is wrong under that year's rules.
    out = read_one(tmp_path, cin_xml(2022, change={"ReasonForClosure": "RC9"}), 2022)
    assert reasons(out["cin_census"]) == {"dfe:8640:ReasonForClosure"}
    # 2024 to 2025 replaced GenderCurrent with Sex: a file still sending GenderCurrent fails.
    xml = cin_xml(2025).replace("<Sex>F</Sex>", "<GenderCurrent>2</GenderCurrent>")
    assert reasons(read_one(tmp_path, xml, 2025)["cin_census"]) == {"dfe:4180:Sex"}
    # A year whose rules are not implemented stops the run, saying so.
    p = tmp_path / "cin_census_2019.xml"
    p.write_text(cin_xml(2019))
    with pytest.raises(SourceFileError, match=r"2018 to 2019; the rules of that collection year "
                                              r"are not implemented"):  # fmt: skip
        read_cin(p, as_at=AS_AT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<Message><Header>", "not a well-formed XML file"),
        (cin_xml(header={"Collection": "SCHOOL"}), "Collection is 'SCHOOL', expected 'CIN'"),
        (cin_xml(header={"Year": ""}), "no collection Year"),
        (cin_xml(header={"ReferenceDate": "2026-01-31"}), "is not 31 March 2026"),
        (cin_xml(children=0), "no Child elements"),
        ("", "the file is empty"),
    ],
)
def test_cin_file_level_problems_stop(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "cin.xml"
    p.write_text(text)
    with pytest.raises(SourceFileError, match=message) as e:
        read_cin(p, as_at=AS_AT)
    assert str(p) in str(e.value)


# ---------------------------------------------------------------------- SSDA903 ---
# One young woman, 17 in 2023 to 2024 (so old enough for OC3 in the years these tests
# use), looked after from June 2025 with one missing episode inside that care.

HEADER = {"CHILD": "C1", "SEX": "2", "DOB": "01/05/2006", "ETHNIC": "WBRI", "UPN": _upn(),
          "MOTHER": "0", "MC_DOB": ""}  # fmt: skip
EPISODE = {"CHILD": "C1", "DECOM": "01/06/2025", "RNE": "S", "LS": "C2", "CIN": "N1",
           "PLACE": "U1", "PLACE_PROVIDER": "PR1", "DEC": "", "REC": "", "REASON_PLACE_CHANGE": "",
           "HOME_POST": "XM1 1AA", "PL_POST": "XM2 2BB", "URN": ""}  # fmt: skip
MISSING = {"CHILD": "C1", "DOB": "01/05/2006", "MISSING": "M", "MIS_START": "02/07/2025",
           "MIS_END": "03/07/2025"}  # fmt: skip
OC3 = {"CHILD": "C1", "DOB": "01/05/2006", "IN_TOUCH": "YES", "ACTIV": "F2", "ACCOM": "B1"}
AD1 = {"CHILD": "C1", "DOB": "01/05/2006", "DATE_INT": "01/07/2025", "DATE_MATCH": "01/08/2025",
       "FOSTER_CARE": "0", "NB_ADOPTR": "2", "SEX_ADOPTR": "MF", "LS_ADOPTR": "L11"}  # fmt: skip
TABLES = {"header.csv": HEADER, "episodes.csv": EPISODE, "missing.csv": MISSING,
          "oc3.csv": OC3, "ad1.csv": AD1}  # fmt: skip


def folder_903(tmp_path: Path, year: int = 2026, **changes: dict[str, str]) -> Path:
    d = tmp_path / "ssda903" / str(year)
    d.mkdir(parents=True, exist_ok=True)
    for file, row in TABLES.items():
        table = file.removesuffix(".csv")
        pl.DataFrame([{**row, **changes.get(table, {})}]).write_csv(d / file)
    return d


def read_903_reasons(d: Path) -> dict[str, pl.DataFrame]:
    res = read_903(d, as_at=AS_AT)
    for r in res.values():
        assert r.rows_in == r.accepted.height + r.quarantined.height
    return {s: r.quarantined for s, r in res.items()} | {
        f"{s}+": r.accepted for s, r in res.items()
    }


def test_valid_903_is_accepted_whole(tmp_path: Path) -> None:
    out = read_903_reasons(folder_903(tmp_path, 2024))
    for s in (
        "ssda903_header",
        "ssda903_episodes",
        "ssda903_missing",
        "ssda903_oc3",
        "ssda903_ad1",
    ):
        assert out[s].height == 0, (s, out[s]["reasons"].to_list())
        assert out[f"{s}+"].height == 1
    head = out["ssda903_header+"].row(0, named=True)
    assert (
        head["sex"] == "F" and head["dob"] == date(2006, 5, 1) and head["collection_year"] == 2024
    )
    assert out["ssda903_episodes+"]["record_id"][0] == "2024/episodes.csv:2"


CASES_903 = [
    ({"header": {"SEX": "7"}}, "ssda903_header", "dfe:101:SEX"),
    ({"header": {"DOB": "31/02/2008"}}, "ssda903_header", "dfe:102:DOB"),
    ({"header": {"ETHNIC": "ZZZZ"}}, "ssda903_header", "dfe:103:ETHNIC"),
    ({"header": {"MOTHER": "2"}}, "ssda903_header", "dfe:165:MOTHER"),
    ({"header": {"MOTHER": "1"}}, "ssda903_header", "dfe:611:MC_DOB"),
    ({"header": {"MC_DOB": "01/01/2025"}}, "ssda903_header", "dfe:612:MC_DOB"),
    ({"header": {"SEX": "1", "MC_DOB": "01/01/2025", "MOTHER": ""}}, "ssda903_header",
     "dfe:174:MC_DOB"),
    ({"header": {"MOTHER": "1", "MC_DOB": "01/01/2005"}}, "ssda903_header", "dfe:621:MC_DOB"),
    ({"episodes": {"DECOM": "2025-06-01"}}, "ssda903_episodes", "dfe:141:DECOM"),
    ({"episodes": {"RNE": "Q"}}, "ssda903_episodes", "dfe:143:RNE"),
    ({"episodes": {"LS": "Z9"}}, "ssda903_episodes", "dfe:144:LS"),
    ({"episodes": {"CIN": "N9"}}, "ssda903_episodes", "dfe:145:CIN"),
    ({"episodes": {"PLACE": "Q9"}}, "ssda903_episodes", "dfe:146:PLACE"),
    ({"episodes": {"DEC": "01/07/2025"}}, "ssda903_episodes", "dfe:148:DEC"),
    ({"episodes": {"DEC": "01/07/2025", "REC": "E99"}}, "ssda903_episodes", "dfe:149:REC"),
    ({"episodes": {"PLACE_PROVIDER": "PR9"}}, "ssda903_episodes", "dfe:178:PLACE_PROVIDER"),
    ({"episodes": {"REASON_PLACE_CHANGE": "WHIM"}}, "ssda903_episodes",
     "dfe:1009:REASON_PLACE_CHANGE"),
    ({"episodes": {"CHILD": "C2"}}, "ssda903_episodes", "dfe:INT03:CHILD"),
    ({"missing": {"DOB": "02/05/2008"}}, "ssda903_missing", "dfe:INT13:DOB"),
    ({"missing": {"MISSING": "X"}}, "ssda903_missing", "dfe:1006:MISSING"),
    ({"missing": {"MIS_END": "01/07/2025"}}, "ssda903_missing", "dfe:567:MIS_END"),
    ({"missing": {"MIS_START": ""}}, "ssda903_missing", "dfe:1004:MIS_START"),
    ({"oc3": {"IN_TOUCH": "MAYBE"}}, "ssda903_oc3", "dfe:131:IN_TOUCH"),
    ({"oc3": {"ACTIV": "Q1"}}, "ssda903_oc3", "dfe:132:ACTIV"),
    ({"oc3": {"ACCOM": ""}}, "ssda903_oc3", "dfe:153:ACCOM"),
    ({"ad1": {"NB_ADOPTR": "3"}}, "ssda903_ad1", "dfe:175:NB_ADOPTR"),
    ({"ad1": {"SEX_ADOPTR": "XX"}}, "ssda903_ad1", "dfe:176:SEX_ADOPTR"),
    ({"ad1": {"DATE_MATCH": "1/8/25x"}}, "ssda903_ad1", "dfe:113:DATE_MATCH"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "source", "code"), CASES_903, ids=[c[2] for c in CASES_903])
def test_each_903_rule_quarantines_with_its_code(
    tmp_path: Path, changes: dict[str, dict[str, str]], source: str, code: str
) -> None:
    out = read_903_reasons(folder_903(tmp_path, 2024, **changes))
    assert out[source].height == 1, out[source]
    assert code in reasons(out[source])


def test_903_collection_years(tmp_path: Path) -> None:
    # SEX M is 2024 to 2025's code, not 2023 to 2024's (rule 101 by year).
    assert "dfe:101:SEX" in reasons(
        read_903_reasons(folder_903(tmp_path, 2024, header={"SEX": "F"}))["ssda903_header"]
    )
    out = read_903_reasons(folder_903(tmp_path, 2025, header={"SEX": "F"}))
    assert out["ssda903_header"].height == 0 and out["ssda903_header+"]["sex"][0] == "F"
    # Placement Z1 was withdrawn in 2025 to 2026 for Z11-Z14 (rule 146 by year).
    assert out_place(tmp_path, 2025, "Z1") == set()
    assert out_place(tmp_path, 2026, "Z1") == {"dfe:146:PLACE"}
    assert out_place(tmp_path, 2026, "Z11") == set()
    with pytest.raises(SourceFileError, match="2019 to 2020; the rules of that collection year"):
        read_903(folder_903(tmp_path, 2020), as_at=AS_AT)


def out_place(tmp_path: Path, year: int, place: str) -> set[str]:
    d = folder_903(tmp_path / f"{year}{place}", year,
                   header={"SEX": "F" if year >= 2025 else "2"},
                   episodes={"PLACE": place, "PLACE_PROVIDER": ""})  # fmt: skip
    return reasons(read_903_reasons(d)["ssda903_episodes"])


def test_903_file_level_problems_are_gathered(tmp_path: Path) -> None:
    d = folder_903(tmp_path)
    (d / "header.csv").unlink()
    (d / "notes.txt").write_text("hello")
    pl.DataFrame({"CHILD": ["C1"], "COLOUR": ["blue"]}).write_csv(d / "odd.csv")
    with pytest.raises(SourceFileError) as e:
        read_903(d, as_at=AS_AT)
    msg = str(e.value)
    assert "no Header table" in msg and "notes.txt: not a CSV file" in msg
    assert "odd.csv: columns match no SSDA903 table" in msg
    bad = tmp_path / "ssda903" / "latest"
    bad.mkdir()
    with pytest.raises(SourceFileError, match="must be named by its collection year"):
        read_903(bad, as_at=AS_AT)


def test_rule_catalogue_codes_are_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "returns.md").read_text()
    codes = {r["code"] for r in catalogue() if not r["code"].startswith("schema")}
    missing = sorted(c for c in codes if f"`{c}`" not in doc)
    assert not missing, f"rule codes not listed in docs/returns.md: {missing}"


# ------------------------------------------------------------- synthetic county ---


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from synthetic.generator import generate_county

    out = tmp_path_factory.mktemp("returns_county")
    generate_county(3000, 11, out)
    return out


# The synthetic returns break none of DfE's rules and raise none of its queries: each
# rule that ever fired on them (8565, 8867, 8820, 8815, 8816, 8940, 8935, 435, 529,
# 8569Q) found a generator defect, since fixed (synthetic/returns.py). Any failure fails.
KNOWN_SYNTHETIC_DEFECTS: dict[str, set[str]] = {}
KNOWN_SYNTHETIC_QUERIES: dict[str, set[str]] = {}


def test_synthetic_returns_are_valid_and_keyed_as_the_truth(county: Path) -> None:
    res = ingest_returns(county, as_at=date(2026, 3, 31))
    assert {"cin_census", "cin_cp_plans", "ssda903_header", "ssda903_episodes"} <= set(res)
    truth = pl.read_csv(county / "truth" / "records.csv", infer_schema=False)
    for source, r in res.items():
        assert reasons(r.quarantined) <= KNOWN_SYNTHETIC_DEFECTS.get(source, set()), source
        # Every 903 table, and every CIN table but the two above, passes every rule.
        if source not in KNOWN_SYNTHETIC_DEFECTS:
            assert r.quarantined.height == 0, (source, r.quarantined["reasons"].to_list()[:5])
        flags = set(r.accepted["dq_flags"].explode().drop_nulls().to_list())
        queries = {f for f in flags if f.startswith("dfe:") and f.split(":")[1].endswith("Q")}
        assert queries <= KNOWN_SYNTHETIC_QUERIES.get(source, set()), (source, queries)
        t = truth.filter(pl.col("source") == source)
        keys = [*r.accepted["record_id"].to_list(), *r.quarantined["row_key"].to_list()]
        assert sorted(keys) == sorted(t["record_id"].to_list())
    # The 903 sequence, OC2 and OC3 eligibility and missing rules had something to check.
    assert res["ssda903_episodes"].accepted.height > 20 and res["ssda903_oc3"].rows_in > 0
    # Each CIN census year holds the children in need of that year; the 903 the same
    # children as the social care extract (one person number space).
    cin = res["cin_census"].accepted
    assert set(cin["collection_year"].unique().to_list()) == {2022, 2023, 2024, 2025, 2026}
    sc = pl.read_csv(county / "social_care.csv", infer_schema=False)
    assert set(res["ssda903_header"].accepted["lcs_person_id"]) <= set(sc["lcs_person_id"])


def test_ingest_all_reads_the_returns_with_the_other_sources(county: Path) -> None:
    res = ingest_all(county, as_at=date(2026, 3, 31))
    assert "ssda903_episodes" in res and "social_care" in res
    # A broken return stops the run with the others' problems, nothing written.
    (county / "returns" / "ssda903" / "2019").mkdir()
    try:
        with pytest.raises(SourceFileError, match="2018 to 2019; the rules"):
            ingest_all(county, as_at=date(2026, 3, 31))
    finally:
        (county / "returns" / "ssda903" / "2019").rmdir()


# ------------------------------------------------------- looked-after measures ---


def _zone_b(episodes: list[dict], oc3: list[dict] | None = None) -> ZoneBFrames:
    persons = pl.DataFrame(
        {
            "person_id": ["p1", "p2", "p3", "p4"],
            "family_id": ["f1", "f2", "f3", "f4"],
            "birth_month": ["2012-05", "2024-01", "2010-07", "2005-09"],
            "sex": ["F", "M", "M", "F"],
            "ethnicity": ["WBRI"] * 4,
            "locality": ["North"] * 4,
            "ward": ["W1"] * 4,
            "objected_statistics": [False] * 4,
        }
    )
    cols = ("person_id", "decom", "rne", "dec", "rec", "cin", "collection_year")
    eps = pl.DataFrame(
        [{c: e.get(c) for c in cols} for e in episodes],
        schema={"person_id": pl.Utf8, "decom": pl.Date, "rne": pl.Utf8, "dec": pl.Date,
                "rec": pl.Utf8, "cin": pl.Utf8, "collection_year": pl.Int64},
    )  # fmt: skip
    events = {"ssda903_episodes": eps}
    if oc3 is not None:
        events["ssda903_oc3"] = pl.DataFrame(oc3)
    ref = Reference(coverage_start={"social_care": date(2024, 4, 1)})
    return ZoneBFrames(persons, events, date(2026, 3, 31), ref)


def d(s: str) -> date:
    return date.fromisoformat(s)


def test_lac_measures_on_a_hand_made_return() -> None:
    y = 2026
    episodes = [
        # p1: in care all year, four placements (S, P, then L does not count, P) -> 3+.
        {"person_id": "p1", "decom": d("2024-06-01"), "rne": "S", "dec": d("2025-05-01"),
         "rec": "X1", "cin": "N1", "collection_year": y},
        {"person_id": "p1", "decom": d("2025-05-01"), "rne": "P", "dec": d("2025-08-01"),
         "rec": "X1", "cin": "N1", "collection_year": y},
        {"person_id": "p1", "decom": d("2025-08-01"), "rne": "L", "dec": d("2025-12-01"),
         "rec": "X1", "cin": "N1", "collection_year": y},
        {"person_id": "p1", "decom": d("2025-12-01"), "rne": "P", "cin": "N1",
         "collection_year": y},
        # p2: started in the year, adopted before 31 March.
        {"person_id": "p2", "decom": d("2025-04-10"), "rne": "S", "dec": d("2026-02-01"),
         "rec": "E11", "cin": "N1", "collection_year": y},
        # p3: the same start returned in two years' files counts once; returned home.
        {"person_id": "p3", "decom": d("2025-01-05"), "rne": "S", "cin": "N4",
         "collection_year": 2025},
        {"person_id": "p3", "decom": d("2025-01-05"), "rne": "S", "dec": d("2025-09-09"),
         "rec": "E4A", "cin": "N4", "collection_year": y},
    ]  # fmt: skip
    oc3 = [
        {"person_id": "p4", "collection_year": y, "activ": "F2", "accom": "B2", "in_touch": "YES"},
    ]
    zb = _zone_b(episodes, oc3)
    frames, _ = derive_all_lac(zb)
    fy = "2025/26"

    def n(name: str, **where: str) -> int:
        f = frames[name].filter(pl.col("financial_year") == fy)
        for k, v in where.items():
            f = f.filter(pl.col(k) == v)
        return f.height

    assert n("lac_at_31_march") == 1  # p1 only (p2 adopted, p3 home before 31 March)
    assert n("lac_3_placements") == 1
    assert n("lac_started") == 1 and n("lac_started", cin_category="Abuse or neglect") == 1
    # p1's and p3's starts in 2024/25, p3's counted once though returned in two years.
    assert frames["lac_started"].filter(pl.col("financial_year") == "2024/25").height == 2
    assert n("lac_ceased") == 2
    assert n("lac_ceased", outcome="Adopted") == 1
    assert n("lac_ceased", outcome="Returned home to parents or relatives") == 1
    assert n("adoptions") == 1
    # p4 turned 20 in the year: a care leaver, in education, not suitably housed.
    assert n("care_leavers") == 1 and n("care_leavers_eet") == 1
    assert n("care_leavers_suitable_accommodation") == 0
    # The share's records are the denominator's (the release layer requires it).
    assert set(frames["lac_3_placements"]["unit_id"]) <= set(frames["lac_31_march_count"]["unit_id"])


def derive_all_lac(zb: ZoneBFrames) -> tuple[dict[str, pl.DataFrame], int]:
    out = {m.meta.name: m.build(zb) for m in LAC_MEASURES}
    return out, 0


def test_lac_measures_are_empty_without_a_903() -> None:
    zb = _zone_b([])
    zb = ZoneBFrames(zb.persons, {}, zb.as_at, zb.reference)
    for m in LAC_MEASURES:
        frame = m.build(zb)
        assert frame.is_empty() and "unit_id" in frame.columns, m.meta.name
