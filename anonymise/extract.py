"""Research extracts on the Five Safes: the only door from zone B to a researcher.

`request_extract` is the door (the CLI and the release service call it). In one go it
- validates the request form (an empty form is a validation error, not audited);
- checks the project is approved, open and unexpired, the researcher is named on it
  and every variable is approved for it (a refusal, audited with its reasons);
- builds the extract (`build_extract`, pure), checked against everything the
  project already holds (its release ledger) and what other projects hold;
- records the ledger entry and the audit entry in one transaction, then writes the
  files owner-only (when asked to) and returns them: data, dictionary, certificate.

What `build_extract` enforces, always:
- people on the objections register (`objected`) are removed first;
- person and family pseudonyms are re-keyed with a key derived from the project's
  immutable id, so two projects' extracts cannot be joined on them;
- every variable goes out through its disclosure treatment (anonymise/catalogue.py):
  counts banded, decimals banded, dates as quarters, codes never free text;
- every variable someone outside the council could know, and every variable another
  project also holds, is a quasi-identifier;
- k (and l on a named sensitive variable) must hold on the union of the new
  extract's quasi-identifiers and every earlier extract's released ones, joined on
  the project's pseudonyms (anonymise/ledger.py); a variable already released to the
  project keeps the level it was first released at; people released before and
  absent now must not be singled out by their absence;
- `family_id` goes only to projects approved for family-level analysis, and a
  family whose make-up is shared by fewer than k families loses its link;
- the result is measured again independently (anonymise/risk.py) on the union.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from anonymise.catalogue import (
    ALWAYS,
    CATALOGUE,
    FAMILY_ID,
    ID_DEFINITIONS,
    REQUESTABLE,
    Treatment,
    VarRole,
    variable,
)
from anonymise.hierarchies import (
    SUPPRESSED,
    Hierarchy,
    age_hierarchy,
    code_set_expr,
    code_set_hierarchy,
    count_band_expr,
    count_band_hierarchy,
    fixed_level_hierarchy,
    flat_hierarchy,
    hierarchy_from_mapping,
    percent_band_expr,
    percent_band_hierarchy,
    quarter_expr,
    quarter_hierarchy,
)
from anonymise.lattice import (
    MAX_LATTICE_NODES,
    AnonymisationResult,
    LatticeTooLargeError,
    NoSolutionError,
    anonymise,
)
from anonymise.ledger import (
    FAMILY,
    NOT_RELEASED,
    PERSON,
    NewLedgerEntry,
    ReleaseHistory,
    joined_view,
    output_paths,
    population,
)
from anonymise.projects import Project, refusals
from anonymise.pseudonymise import MasterKey, load_master_key, pseudonymise_series
from anonymise.risk import k_anonymity, risk_report
from registry.codes import ETHNIC_MAJOR_GROUP, NEEDS
from registry.settings import ExtractPolicy, WorkFolder, load_extract_policy_file

if TYPE_CHECKING:
    from anonymise.ports import ExtractStore

EXTRACT_POLICY_PATH = Path(__file__).parent / "policies" / "extract.toml"


class ExtractInvalid(ValueError):
    """The request form is incomplete or inconsistent; nothing was checked or audited."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the request is incomplete:\n" + "\n".join(f"  - {p}" for p in problems))


class ExtractRefused(Exception):
    """The extract cannot be released; `reasons` says why and `suggestions` what would pass."""

    def __init__(self, reasons: list[str], suggestions: list[str]) -> None:
        self.reasons = reasons
        self.suggestions = suggestions
        text = "extract refused:\n" + "\n".join(f"  - {r}" for r in reasons)
        if suggestions:
            text += "\nwhat would pass:\n" + "\n".join(f"  - {s}" for s in suggestions)
        super().__init__(text)


def load_extract_policy(path: Path = EXTRACT_POLICY_PATH) -> ExtractPolicy:
    """The extract policy, validated whole (`registry.settings.ExtractPolicy`): unknown,
    missing and out-of-range keys are all reported at once, each with its key."""
    return load_extract_policy_file(path)


@dataclass(frozen=True)
class ExtractRequest:
    """What a researcher asks for. `project` is the register's project id."""

    project: str
    purpose: str = ""  # optional note for this extract; the project's purpose is certified
    requester: str = ""
    variables: tuple[str, ...] = ()
    k: int | None = None
    l: int | None = None  # noqa: E741
    sensitive: str | None = None


@dataclass(frozen=True)
class Extract:
    data: pl.DataFrame
    dictionary: pl.DataFrame
    certificate: dict[str, Any]
    result: AnonymisationResult = field(repr=False)
    # What the ledger keeps: pseudonyms and the released quasi-identifier values.
    ledger_frame: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)
    levels: dict[str, int] = field(default_factory=dict)
    level_names: dict[str, str] = field(default_factory=dict)
    quasi_identifiers: tuple[str, ...] = ()
    extract_no: int = 1


# --- treatments ---------------------------------------------------------------------------------


def base_expr(name: str) -> pl.Expr:
    """The treatment's base step: the finest form in which `name` may ever leave."""
    t = variable(name).treatment
    col = pl.col(name)
    if t is Treatment.COUNT:
        out = count_band_expr(col)
    elif t is Treatment.PERCENT:
        out = percent_band_expr(col)
    elif t is Treatment.QUARTER:
        out = quarter_expr(col)
    elif t is Treatment.CODE_SET:
        out = code_set_expr(col, NEEDS)
    else:
        # Codes and ages: as recorded (the research table already names a missing code);
        # a missing age stays missing, a value of its own until it is generalised to *.
        out = col.cast(pl.String)
    return out.alias(name)


def _geography_hierarchy(geography: pl.DataFrame, values: pl.Series) -> Hierarchy:
    """LSOA -> ward -> locality -> county -> *, with 'Not known' kept apart until '*'."""
    rows: dict[str, list[str]] = {}
    for r in geography.iter_rows(named=True):
        rows[r["lsoa"]] = [r["ward"], r["locality"], "County", "*"]
    for v in values.unique().to_list():
        if v not in rows:
            rows[v] = ["Not known", "Not known", "Not known", "*"]
    return _named(hierarchy_from_mapping("lsoa", rows), ("LSOA", "ward", "locality", "county", "*"))


def _named(h: Hierarchy, levels: tuple[str, ...]) -> Hierarchy:
    return Hierarchy(h.name, h.table, levels=levels)


def treatment_hierarchy(name: str, base: pl.Series, geography: pl.DataFrame) -> Hierarchy:
    """The hierarchy over `name`'s base values that the lattice search may climb."""
    t = variable(name).treatment
    if t is Treatment.AGE:
        return age_hierarchy(name, max_age=99)
    if t is Treatment.AREA:
        return _geography_hierarchy(geography, base)
    if t is Treatment.ETHNICITY:
        eth = {
            code: [ETHNIC_MAJOR_GROUP.get(code, "Not known"), "*"]
            for code in base.unique().to_list()
        }
        return _named(hierarchy_from_mapping(name, eth), ("ethnic group", "major group", "*"))
    if t is Treatment.COUNT:
        return count_band_hierarchy(name)
    if t is Treatment.PERCENT:
        return percent_band_hierarchy(name)
    if t is Treatment.QUARTER:
        years = [int(v[:4]) for v in base.unique().to_list() if v and v[:4].isdigit()]
        return quarter_hierarchy(
            name, first_year=min(years, default=2000), last_year=max(years, default=2000)
        )
    if t is Treatment.CODE_SET:
        return code_set_hierarchy(name, base.unique().to_list())
    return _named(flat_hierarchy(name, base.unique().sort().to_list()), ("code", "*"))


def hierarchies_for(table: pl.DataFrame, geography: pl.DataFrame) -> dict[str, Hierarchy]:
    """Every catalogue variable's treatment hierarchy over the research table's base values."""
    base = table.select(base_expr(v) for v in CATALOGUE)
    return {v: treatment_hierarchy(v, base[v], geography) for v in CATALOGUE}


# --- validating a request --------------------------------------------------------------------


def validation_problems(req: ExtractRequest, policy: ExtractPolicy) -> list[str]:
    """Problems with the form itself: nothing to check, nothing to audit."""
    problems = []
    if not req.project.strip():
        problems.append("choose a project")
    if not req.requester.strip():
        problems.append("the researcher's account is required")
    if not req.variables:
        problems.append("choose at least one variable")
    if len(set(req.variables)) != len(req.variables):
        problems.append("a variable is listed twice")
    k = req.k if req.k is not None else policy.k
    if k < policy.min_k:
        problems.append(f"k={k} is below the policy's floor of {policy.min_k}")
    if req.sensitive is not None:
        if req.sensitive not in req.variables:
            problems.append(
                f"the sensitive variable {req.sensitive!r} must be one of the variables"
            )
        elif (
            req.sensitive in CATALOGUE and CATALOGUE[req.sensitive].role is VarRole.QUASI_IDENTIFIER
        ):
            who = "; ".join(CATALOGUE[req.sensitive].known_by)
            problems.append(
                f"{req.sensitive!r} can be known outside the council ({who}), so it is a "
                "quasi-identifier and cannot be the l-diversity variable"
            )
        elif req.sensitive in CATALOGUE and CATALOGUE[req.sensitive].role is not VarRole.SENSITIVE:
            problems.append(f"{req.sensitive!r} is not a sensitive variable in the catalogue")
        if (req.l if req.l is not None else policy.l) < 1:
            problems.append("l must be at least 1")
    elif req.l is not None:
        problems.append("l-diversity needs a sensitive variable")
    return problems


# --- building --------------------------------------------------------------------------------


def _key_column(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Expr:
    if not columns:
        return pl.lit("")
    return pl.concat_str([pl.col(c) for c in columns], separator="\x1f")


def _absence_fix(
    released: pl.DataFrame, union_qis: list[str], hcols: list[str], history: ReleaseHistory, k: int
) -> tuple[pl.DataFrame, int, int]:
    """People released before and absent now must not be singled out by their absence.

    A person in an earlier extract who is not in this one (suppressed, or objected since)
    is seen by an intruder as their earlier values plus "not released". Where fewer than k
    absent people share those earlier values, more people with the same earlier values are
    held back until k are absent: first from classes of this extract larger than k (a
    class keeps at least k), then whole classes, smallest first. At worst everyone with
    those earlier values is held back, and that group held at least k people when it was
    released. Returns the rows kept, how many were held back and how many absent people
    were at risk."""
    if not history.earlier:
        return released, 0, 0
    pop = population(history)
    absent = pop.filter(~pop.is_in(released[PERSON].implode()))
    if absent.len() == 0:
        return released, 0, 0
    view, cols = joined_view(absent, history)
    small = view.group_by(cols).len().filter(pl.col("len") < k)
    if small.height == 0:
        return released, 0, 0
    at_risk = int(small["len"].sum())
    # The released frame names the earlier columns `hcols`, the same names as `cols`.
    candidates = (
        released.select(PERSON, *union_qis)
        .join(small.rename({"len": "_absent"}), on=cols, how="inner")
        .with_columns(
            _key_column(released, cols).alias("_earlier"),
            _key_column(released, union_qis).alias("_class"),
        )
        .with_columns(pl.len().over("_class").alias("_size"))
        .sort("_earlier", "_size", "_class", PERSON, descending=[False, True, False, False])
    )
    held: list[str] = []
    for (_,), group in candidates.group_by(["_earlier"], maintain_order=True):
        need = k - int(group["_absent"][0])
        classes = group.partition_by("_class", maintain_order=True)
        for c in classes:  # largest first: take only the slack above k
            take = min(c.height - k, need)
            if take > 0:
                held.extend(c[PERSON].head(take).to_list())
                need -= take
        for c in sorted((c for c in classes if c.height <= k), key=lambda c: c.height):
            if need <= 0:
                break
            held.extend(c[PERSON].to_list())
            need -= c.height
        if need > 0:  # not enough even so: hold back everyone with these earlier values
            held.extend(group[PERSON].to_list())
    keep = released.filter(~pl.col(PERSON).is_in(pl.Series(held, dtype=pl.String).implode()))
    return keep, released.height - keep.height, at_risk


def _family_signatures(rows: pl.DataFrame, links: pl.DataFrame, qis: Sequence[str]) -> pl.DataFrame:
    """family_id -> signature: the sorted multiset of its members' union rows."""
    member = rows.select(PERSON, _key_column(rows, qis).alias("_row"))
    return (
        links.join(member, on=PERSON, how="inner")
        .group_by(FAMILY)
        .agg(pl.col("_row").sort().str.join("\x1e").alias("_sig"))
    )


def _family_check(
    released: pl.DataFrame,
    union_qis: list[str],
    history: ReleaseHistory,
    new_qis: list[str],
    k: int,
    release_family: bool,
) -> tuple[pl.DataFrame, dict[str, Any], list[str]]:
    """Family-level k: each family's make-up must be shared by at least k families.

    A family's signature is the multiset of its members' rows on every quasi-identifier the
    project holds (members linked by this extract or an earlier one). A family whose
    signature fewer than k families share loses its link in this extract (family_id left
    blank for its members). If it was linked by an earlier extract, removing the new link
    cannot hide it, and the extract is refused."""
    earlier_links = [
        e.frame.filter(pl.col(FAMILY).is_not_null()).select(FAMILY, PERSON)
        for e in history.earlier
        if FAMILY in e.frame.columns
    ]
    if not release_family and not earlier_links:
        return released, {}, []
    # Everyone the project holds, as an intruder joining all extracts sees them.
    pop = population(history)
    absent = pop.filter(~pop.is_in(released[PERSON].implode()))
    absent_view, _ = joined_view(absent, history)
    absent_view = absent_view.with_columns(pl.lit(NOT_RELEASED).alias(q) for q in new_qis)
    people = pl.concat(
        [released.select(PERSON, *union_qis), absent_view.select(PERSON, *union_qis)]
    )
    old = (
        pl.concat(earlier_links).unique()
        if earlier_links
        else pl.DataFrame(schema={FAMILY: pl.String, PERSON: pl.String})
    )
    new = released.select(FAMILY, PERSON) if release_family else old.clear()

    def failing(links: pl.DataFrame) -> pl.DataFrame:
        sig = _family_signatures(people, links.unique(), union_qis)
        counts = sig.group_by("_sig").len()
        return sig.join(counts, on="_sig").filter(pl.col("len") < k).select(FAMILY)

    bad = failing(pl.concat([old, new]))
    families = pl.concat([old, new])[FAMILY].n_unique()
    unlinked = bad.join(new.select(FAMILY).unique(), on=FAMILY, how="semi")
    if release_family and unlinked.height:
        released = released.with_columns(
            pl.when(pl.col(FAMILY).is_in(unlinked[FAMILY].implode()))
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col(FAMILY))
            .alias(FAMILY)
        )
        new = released.filter(pl.col(FAMILY).is_not_null()).select(FAMILY, PERSON)
    still = failing(pl.concat([old, new]))
    problems = []
    if still.height:
        problems.append(
            f"{still.height} famil{'y' if still.height == 1 else 'ies'} linked by an earlier "
            f"extract would be singled out (fewer than k={k} families with the same make-up) "
            "by this extract's columns"
        )
    info = {
        "families": families,
        "families_unlinked": unlinked.height,
        "records_unlinked": released.filter(pl.col(FAMILY).is_null()).height
        if release_family
        else 0,
    }
    return released, info, problems


def build_extract(
    table: pl.DataFrame,
    geography: pl.DataFrame,
    req: ExtractRequest,
    *,
    project: Project,
    key: MasterKey,
    policy: ExtractPolicy,
    data_as_at: str,
    history: ReleaseHistory | None = None,
    now: datetime | None = None,
) -> Extract:
    """Pure: research table and what the project already holds in, protected extract out.

    Raises ExtractInvalid for a malformed request and ExtractRefused (reasons and what
    would pass) when the extract may not be released. The door has already checked the
    project's approval; the approved variables are checked again here."""
    history = history or ReleaseHistory()
    problems = validation_problems(req, policy)
    if problems:
        raise ExtractInvalid(problems)
    today = (now or datetime.now(UTC)).date()
    refused = refusals(project, req.requester, req.variables, today)
    unknown = [v for v in req.variables if v not in REQUESTABLE]
    if unknown:
        refused.append(f"unknown variable(s) {unknown}")
    if refused:
        raise ExtractRefused(refused, [])
    k = req.k if req.k is not None else policy.k
    l_value = (req.l if req.l is not None else policy.l) if req.sensitive else None
    release_family = FAMILY_ID in req.variables
    variables = [v for v in req.variables if v != FAMILY_ID]

    before = table.height
    kept = table.filter(~pl.col("objected"))  # the contract with zone B: always first
    objectors = before - kept.height
    pkey = key.project_key(project.project_id)
    data = kept.select(
        pseudonymise_series(kept["person_id"], pkey, prefix="P").alias(PERSON),
        *([pseudonymise_series(kept["family_id"], pkey, prefix="F").alias(FAMILY)]
          if release_family else []),
        *(base_expr(v) for v in variables),
    )  # fmt: skip
    treatment = {v: treatment_hierarchy(v, data[v], geography) for v in variables}

    shared = history.shared_elsewhere(variables)
    qis = [v for v in variables if CATALOGUE[v].externally_knowable or v in shared]
    if req.sensitive in shared:
        raise ExtractRefused(
            [f"{req.sensitive!r} is also held by project(s) {shared[req.sensitive]}, so it is a "
             "quasi-identifier here and cannot be the l-diversity variable"],
            ["ask without l-diversity, or name another sensitive variable"],
        )  # fmt: skip
    fixed = history.fixed_levels()
    hier: dict[str, Hierarchy] = {}
    levels: dict[str, int] = {}
    for v in variables:
        h = treatment[v]
        if v in fixed:
            level = min(fixed[v], h.height)
            data = data.with_columns(h.generalise(data[v], level))
            levels[v] = level
            if v in qis:
                hier[v] = fixed_level_hierarchy(v, data[v].unique().sort(), h.levels[level])
        elif v in qis:
            hier[v] = h
        else:
            levels[v] = 0
    view, hcols = joined_view(data[PERSON], history)
    data = data.join(view, on=PERSON, how="left", maintain_order="left")
    for c in hcols:
        hier[c] = fixed_level_hierarchy(c, data[c].unique().sort(), "as released")
    union_qis = [*qis, *hcols]
    # Many outside-knowable variables make the lattice too large to search whole. Then the
    # service-history ones start at their coarsest level short of * (none or any, year,
    # under or over 10%): the search still chooses between that and withholding them.
    offset: dict[str, int] = {}
    if math.prod(hier[q].height + 1 for q in union_qis) > MAX_LATTICE_NODES:
        for q in qis:
            h = hier[q]
            if q not in fixed and q not in DEMOGRAPHICS and h.height >= 2:
                offset[q] = h.height - 1
                data = data.with_columns(h.generalise(data[q], offset[q]))
                hier[q] = _from_level(h, offset[q])
    if not union_qis:
        raise ExtractRefused(
            ["the request has no quasi-identifier, so k-anonymity cannot be shown for it"],
            ["add at least one of age, sex, ethnicity, lsoa (they will be generalised as needed)"],
        )
    # Columns that cannot move (earlier extracts' columns, QIs fixed for the project) are one
    # column to the search: only their combination splits records, and the lattice then has
    # one dimension for them instead of one each.
    unmoving = [c for c in union_qis if hier[c].height == 0]
    search_qis, search_hier = union_qis, hier
    if len(unmoving) > 1:
        data = data.with_columns(
            pl.concat_str([pl.col(c).fill_null("\x00") for c in unmoving], separator="\x1f").alias(
                _UNMOVING
            )
        )
        search_qis = [*(c for c in union_qis if c not in unmoving), _UNMOVING]
        search_hier = {c: hier[c] for c in search_qis if c != _UNMOVING}
        search_hier[_UNMOVING] = fixed_level_hierarchy(
            _UNMOVING, data[_UNMOVING].unique().sort(), "as released"
        )
    limit = int(policy.suppression_limit * data.height + 1e-9)
    try:
        result = anonymise(
            data,
            search_qis,
            search_hier,
            k=k,
            l=l_value,
            sensitive=req.sensitive,
            suppression_limit=policy.suppression_limit,
        )
    except (NoSolutionError, LatticeTooLargeError) as e:
        reasons = [str(e.args[0])]
        if isinstance(e, NoSolutionError) and len(e.args) > 1:
            reasons.append(e.args[1].explain())
        if hcols:
            reasons.append(
                f"checked together with the {len(history.earlier)} earlier extract(s) of "
                f"project {project.project_id}, joined on its pseudonyms"
            )
        searched = [q for q in qis if q not in fixed]
        raise ExtractRefused(
            reasons,
            _suggestions(
                data, search_qis, searched, search_hier, k, l_value, req.sensitive, policy
            ),
        ) from None
    out, held_back, absent_at_risk = _absence_fix(result.data, union_qis, hcols, history, k)
    # Suppressing fewer people leaves fewer absent: search again with a tighter limit
    # (more generalisation) until the people held back for absence fit within the limit.
    share = policy.suppression_limit
    while result.suppressed + held_back > limit and share > 0.001:
        share = share / 2 if share > 0.0025 else 0.0
        try:
            tighter = anonymise(
                data, search_qis, search_hier, k=k, l=l_value, sensitive=req.sensitive,
                suppression_limit=share,
            )  # fmt: skip
        except (NoSolutionError, LatticeTooLargeError):
            break
        t_out, t_held, t_risk = _absence_fix(tighter.data, union_qis, hcols, history, k)
        if tighter.suppressed + t_held < result.suppressed + held_back:
            result, out, held_back, absent_at_risk = tighter, t_out, t_held, t_risk
    suppressed = result.suppressed + held_back
    if suppressed > limit:
        raise ExtractRefused(
            [f"{absent_at_risk} people released before and missing from this extract would be "
             f"singled out by their absence; holding back those who share their earlier values "
             f"makes {suppressed} records suppressed, over the limit of {limit}"],
            ["ask again after the objections or suppressions that removed them are reviewed, "
             "or with fewer quasi-identifiers"],
        )  # fmt: skip
    for q in qis:
        if q not in fixed:
            levels[q] = offset.get(q, 0) + result.transformation[q]
    checked = _family_check(out, union_qis, history, qis, k, release_family)
    # Too many families unlinked: generalise the searched QIs further, one level at a time,
    # taking the step that keeps the most links. Coarser values only merge classes, so k and
    # l still hold for the records kept.
    searched = [q for q in qis if q not in fixed]
    while (
        release_family
        and out.height
        and checked[1]["records_unlinked"] / out.height > policy.family_unlink_limit
    ):
        steps = []
        for q in searched:
            h = hier[q]
            at = levels[q] - offset.get(q, 0)  # the level within the searched hierarchy
            if at < h.height:
                coarser = out.with_columns(_climb(h, out[q], at, at + 1))
                steps.append((_family_check(coarser, union_qis, history, qis, k, True), q, coarser))
        if not steps:
            break
        checked, q, out = min(steps, key=lambda s: s[0][1]["records_unlinked"])
        levels[q] += 1
    out, family_info, family_problems = checked
    if family_problems:
        raise ExtractRefused(
            family_problems,
            ["ask without new quasi-identifiers for this project, or close it and start a new one"],
        )
    if release_family and out.height:
        share = family_info["records_unlinked"] / out.height
        if share > policy.family_unlink_limit:
            raise ExtractRefused(
                [f"family links would be removed from {share:.0%} of records (limit "
                 f"{policy.family_unlink_limit:.0%}) because their family's make-up is shared by "
                 f"fewer than k={k} families, even with every quasi-identifier fully generalised"],
                ["ask for fewer quasi-identifiers with family_id"],
            )  # fmt: skip

    # Measure again with the independent risk engine, on the union an intruder would see.
    report = risk_report(out, union_qis, req.sensitive)
    whole = _project_population_k(out, union_qis, qis, history)
    if report.k < k or whole < k or (l_value is not None and (report.l_distinct or 0) < l_value):
        raise ExtractRefused(
            [f"independent check failed: k={report.k} (k={whole} over everyone the project "
             f"holds), l={report.l_distinct} after anonymisation"],
            [],
        )  # fmt: skip
    level_names = {v: treatment[v].levels[levels[v]] for v in variables}
    released = out.select(PERSON, *([FAMILY] if release_family else []), *variables)
    ledger_frame = out.select(PERSON, *([FAMILY] if release_family else []), *qis)
    dictionary = _dictionary(req.variables, qis, level_names, shared)
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    withheld = [q for q in qis if level_names[q] == SUPPRESSED]
    certificate = {
        "certificate_version": 2,
        "project": project.project_id,
        "project_title": project.title,
        "purpose": project.spec.purpose,
        "note": req.purpose,
        "lawful_basis": project.spec.lawful_basis,
        "approved_by": project.spec.approver,
        "project_expires": project.expires_on.isoformat(),
        "requester": req.requester,
        "extract_no": history.next_extract_no,
        "issued_at": stamp.isoformat(),
        "data_as_at": data_as_at,
        "policy": {
            "id": policy.ref,
            "k": k,
            "l": l_value,
            "sensitive": req.sensitive,
            "suppression_limit": policy.suppression_limit,
        },
        "variables": list(req.variables),
        "columns": _column_roles(req.variables, qis, level_names, shared),
        "quasi_identifiers": qis,
        "withheld": withheld,
        "transformation": {q: level_names[q] for q in qis},
        "transformation_levels": {q: levels[q] for q in qis},
        "cumulative": {
            "earlier_extracts": len(history.earlier),
            "earlier_columns_joined": len(hcols),
            "fixed_levels": {v: fixed[v] for v in variables if v in fixed},
            "shared_with_other_projects": shared,
            "held_back_for_absence": held_back,
            "k_over_everyone_the_project_holds": whole,
        },
        "family": family_info or None,
        "achieved": report.to_dict(include_classes=False),
        "information_loss": result.loss.to_dict(),
        "records": {
            "in_research_table": before,
            "objectors_excluded": objectors,
            "suppressed": suppressed,
            "released": released.height,
        },
        "pseudonyms": (
            "keyed for this project only (HKDF-SHA256 of the master key and the project id)"
        ),
        "search": {"nodes_evaluated": result.nodes_evaluated, "lattice_size": result.lattice_size},
    }
    return Extract(
        released,
        dictionary,
        certificate,
        result,
        ledger_frame,
        levels,
        level_names,
        tuple(qis),
        history.next_extract_no,
    )


DEMOGRAPHICS = ("age", "sex", "ethnicity", "lsoa")
_UNMOVING = "__unmoving"


def _from_level(h: Hierarchy, level: int) -> Hierarchy:
    """`h` from `level` up: its leaves are the values at `level`."""
    table = h.table.select(h.table.columns[level:]).unique(f"l{level}", maintain_order=True)
    return Hierarchy(h.name, table, levels=h.levels[level:])


def _climb(h: Hierarchy, values: pl.Series, frm: int, to: int) -> pl.Series:
    """Values at level `frm` of `h` re-expressed at the coarser level `to`."""
    pairs = h.table.select(pl.col(f"l{frm}").alias("a"), pl.col(f"l{to}").alias("b")).unique("a")
    return values.replace_strict(pairs["a"], pairs["b"], default=None).alias(values.name)


def _project_population_k(
    out: pl.DataFrame, union_qis: list[str], qis: list[str], history: ReleaseHistory
) -> int:
    """k over everyone the project will hold: released now, or before and absent now."""
    pop = population(history)
    absent = pop.filter(~pop.is_in(out[PERSON].implode()))
    if absent.len() == 0:
        return k_anonymity(out, union_qis) if out.height else 0
    view, _ = joined_view(absent, history)
    view = view.with_columns(pl.lit(NOT_RELEASED).alias(q) for q in qis)
    everyone = pl.concat([out.select(union_qis), view.select(union_qis)])
    return k_anonymity(everyone, union_qis)


def _suggestions(
    data: pl.DataFrame,
    qis: list[str],
    searched: list[str],
    hier: Mapping[str, Hierarchy],
    k: int,
    l_value: int | None,
    sensitive: str | None,
    policy: ExtractPolicy,
) -> list[str]:
    """Which single change would pass: leaving out one new QI, or the sensitive variable."""
    out = []
    for q in searched:
        rest = [x for x in qis if x != q]
        if not rest:
            continue
        try:
            r = anonymise(
                data, rest, {x: hier[x] for x in rest}, k=k, l=l_value, sensitive=sensitive,
                suppression_limit=policy.suppression_limit,
            )  # fmt: skip
        except (NoSolutionError, LatticeTooLargeError):
            continue
        levels = ", ".join(f"{x} as {r.level_names[x]}" for x in rest if x in searched)
        out.append(f"leave out {q!r}: passes with {levels} ({r.suppressed} records suppressed)")
    if sensitive is not None:
        try:
            anonymise(
                data,
                qis,
                {x: hier[x] for x in qis},
                k=k,
                suppression_limit=policy.suppression_limit,
            )
            out.append(f"drop l-diversity on {sensitive!r} (k-anonymity alone passes)")
        except (NoSolutionError, LatticeTooLargeError):
            pass
    if not out:
        out.append(
            "ask for fewer quasi-identifiers (variables someone outside the council could "
            "know), or for a smaller k if the policy allows it"
        )
    return out


def _released_as(v: str, qis: Sequence[str], level_names: Mapping[str, str]) -> str:
    name = level_names[v]
    if v in qis and name == SUPPRESSED:
        return "withheld: generalised away entirely (every record shows *)"
    treatment = variable(v).treatment
    if v in qis:
        return f"generalised to {name} ({treatment.description})"
    return f"{name} ({treatment.description})"


def _column_roles(
    requested: Sequence[str],
    qis: Sequence[str],
    level_names: Mapping[str, str],
    shared: Mapping[str, list[str]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"variable": PERSON, "role": "key", "treatment": "project pseudonym", "known_by": []}
    ]
    if FAMILY_ID in requested:
        rows.append(
            {
                "variable": FAMILY,
                "role": "key",
                "known_by": [],
                "treatment": "project pseudonym; blank where the family's make-up is shared "
                "by fewer than k families",
            }
        )
    for v in requested:
        if v == FAMILY_ID:
            continue
        var = variable(v)
        known = list(var.known_by)
        if v in shared:
            known.append(f"other projects holding it: {', '.join(shared[v])}")
        rows.append(
            {
                "variable": v,
                "role": VarRole.QUASI_IDENTIFIER.value if v in qis else var.role.value,
                "treatment": _released_as(v, qis, level_names),
                "known_by": known,
            }
        )
    return rows


def _dictionary(
    requested: Sequence[str],
    qis: Sequence[str],
    level_names: Mapping[str, str],
    shared: Mapping[str, list[str]],
) -> pl.DataFrame:
    roles = {r["variable"]: r for r in _column_roles(requested, qis, level_names, shared)}
    rows = []
    for name in (*ALWAYS, *([FAMILY] if FAMILY_ID in requested else [])):
        rows.append(
            {"variable": name, "title": name.replace("_", " "), "type": "pseudonym", "role": "key",
             "definition": ID_DEFINITIONS[name], "released_as": roles[name]["treatment"],
             "known_outside_council_by": ""}
        )  # fmt: skip
    for v in requested:
        if v == FAMILY_ID:
            continue
        var = variable(v)
        rows.append(
            {
                "variable": v,
                "title": var.title,
                "type": var.dtype,
                "role": roles[v]["role"],
                "definition": var.definition,
                "released_as": roles[v]["treatment"],
                "known_outside_council_by": "; ".join(roles[v]["known_by"]),
            }
        )
    return pl.DataFrame(rows)


def certificate_text(cert: dict[str, Any]) -> str:
    a = cert["achieved"]
    pol = cert["policy"]
    cum = cert["cumulative"]
    lines = [
        "RESEARCH EXTRACT RELEASE CERTIFICATE",
        "",
        f"Project:        {cert['project']} - {cert['project_title']}",
        f"Purpose:        {cert['purpose']}",
        f"Lawful basis:   {cert['lawful_basis']}",
        f"Approved by:    {cert['approved_by']} (project expires {cert['project_expires']};"
        " delete this extract by then)",
        f"Requested by:   {cert['requester']} (extract {cert['extract_no']} of this project)",
        f"Issued:         {cert['issued_at']}",
        f"Data as at:     {cert['data_as_at']}",
        f"Policy:         {pol['id']} (k={pol['k']}"
        + (f", l={pol['l']} on {pol['sensitive']}" if pol["l"] else "")
        + f", suppression limit {pol['suppression_limit']:.0%})",
        "",
        "Columns (role; how released; who outside the council could know it):",
    ]
    for c in cert["columns"]:
        known = "; ".join(c["known_by"]) or "nobody outside the council"
        lines.append(f"  {c['variable']}: {c['role']}; {c['treatment']}; {known}")
    if cert["withheld"]:
        lines.append(
            "Withheld entirely (generalised to * for every record): " + ", ".join(cert["withheld"])
        )
    lines += [
        "",
        f"Checked with:   {cum['earlier_extracts']} earlier extract(s) of this project joined on "
        f"its pseudonyms ({cum['earlier_columns_joined']} earlier columns)",
    ]
    if cum["shared_with_other_projects"]:
        lines.append(
            "Shared with other projects (treated as quasi-identifiers): "
            + "; ".join(
                f"{v}: {', '.join(p)}" for v, p in cum["shared_with_other_projects"].items()
            )
        )
    lines += [
        f"Achieved:       k = {a['k_anonymity']} on the union of released quasi-identifiers"
        + (f", distinct l = {a['l_diversity_distinct']}" if a.get("l_diversity_distinct") else "")
        + f"; {a['equivalence_classes']} classes, average size {a['average_class_size']:.1f}",
        f"                k = {cum['k_over_everyone_the_project_holds']} over everyone the "
        "project holds (earlier extracts included)",
        f"Highest prosecutor risk: {a['reidentification']['prosecutor']['highest']:.3f}",
        f"Records:        {cert['records']['released']:,} released, "
        f"{cert['records']['suppressed']:,} suppressed, "
        f"{cert['records']['objectors_excluded']:,} excluded (objections)",
    ]
    fam = cert.get("family")
    if fam:
        lines.append(
            f"Families:       {fam['families']:,} linked; {fam['families_unlinked']:,} left "
            f"unlinked ({fam['records_unlinked']:,} records) because fewer than k families "
            "share their make-up"
        )
    lines += [
        f"Information loss (Iyengar, geometric): {cert['information_loss']['loss']:.4f}",
        "",
        f"Data file:      {cert.get('file', '')}",
        f"SHA-256:        {cert.get('sha256', '')}",
        "",
        "Person and family pseudonyms are keyed for this project only. Do not attempt to",
        "re-identify anyone, link this file to other data, or share it beyond the project.",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ExtractFiles:
    """The extract as files: what `write_files` writes and the portal offers for download."""

    data_name: str
    data: bytes
    dictionary: bytes
    certificate_json: bytes
    certificate_text: bytes
    certificate: dict[str, Any]

    def names(self) -> dict[str, str]:
        """The file name of each part: data, dictionary, certificate_json, certificate_text."""
        stem = self.data_name.rsplit(".", 1)[0]
        return {
            "data": self.data_name,
            "dictionary": f"{stem}.dictionary.csv",
            "certificate_json": f"{stem}.certificate.json",
            "certificate_text": f"{stem}.certificate.txt",
        }


def render_extract(extract: Extract, data_name: str) -> ExtractFiles:
    """Serialise data (CSV cells made formula-safe, or Parquet), dictionary and certificate;
    the certificate carries the SHA-256 of exactly the data bytes returned."""
    from anonymise.safe_output import safe_frame

    buf = io.BytesIO()
    if data_name.endswith(".parquet"):
        extract.data.write_parquet(buf)
    else:
        safe_frame(extract.data).write_csv(buf)
    data = buf.getvalue()
    stem = data_name.rsplit(".", 1)[0]
    cert = dict(
        extract.certificate,
        file=data_name,
        sha256=hashlib.sha256(data).hexdigest(),
        dictionary=f"{stem}.dictionary.csv",
    )
    return ExtractFiles(
        data_name=data_name,
        data=data,
        dictionary=safe_frame(extract.dictionary).write_csv().encode(),
        certificate_json=(json.dumps(cert, indent=2, default=str) + "\n").encode(),
        certificate_text=certificate_text(cert).encode(),
        certificate=cert,
    )


# --- safe settings: where files may be written ----------------------------------------------


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def out_path_problems(
    out: Path,
    *,
    forbidden_folders: Sequence[Path],
    forbidden_files: Sequence[Path] = (),
    force: bool = False,
) -> list[str]:
    """Why the extract may not be written at `out` (empty: it may)."""
    problems = []
    if out.suffix not in (".csv", ".parquet"):
        problems.append(f"{out}: the data file must end in .csv or .parquet")
    target = out.expanduser().resolve()
    for folder in forbidden_folders:
        if _inside(target, folder.expanduser().resolve()):
            problems.append(
                f"{out} is inside {folder}, a pipeline or data folder: write extracts elsewhere"
            )
            break
    for path in output_paths(target):
        if any(path == f.expanduser().resolve() for f in forbidden_files):
            problems.append(f"{path} is the store: write extracts elsewhere")
        elif path.exists() and not force:
            problems.append(f"{path} exists: refusing to overwrite it without --force")
        elif path.is_dir():
            problems.append(f"{path} is a folder")
    return problems


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an overwritten file keeps its old mode otherwise
        os.write(fd, data)
    finally:
        os.close(fd)


def write_files(files: ExtractFiles, out: Path) -> list[Path]:
    """Write the data file to `out` and the dictionary and certificates beside it, owner-only."""
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = output_paths(out)
    for path, data in zip(
        paths,
        (files.data, files.dictionary, files.certificate_json, files.certificate_text),
        strict=True,
    ):
        _write_private(path, data)
    return paths


# --- the door ------------------------------------------------------------------------------


def forbidden_folders(work_dir: Path, store: ExtractStore) -> tuple[list[Path], list[Path]]:
    """Folders and files an extract may never be written into: the pipeline's work folder
    (zones A and B), the data folder and the store's own file."""
    folders, files = store.protected_paths()
    return [work_dir, *folders], files


def request_extract(
    store: ExtractStore,
    work_dir: Path,
    req: ExtractRequest,
    *,
    data_as_at: str,
    via: str,
    demo: bool = False,
    key_file: Path | None = None,
    key: MasterKey | None = None,
    out: Path | None = None,
    force: bool = False,
    data_name: str | None = None,
    today: date | None = None,
    policy: ExtractPolicy | None = None,
) -> ExtractFiles:
    """The extract door. Inputs: the store (register, ledger, audit), zone B's folder and
    the request (project id, researcher account, variables, optional k, l and sensitive).
    Output: the files (data, dictionary, certificate JSON and text), already written to
    `out` owner-only when `out` is given.

    Raises ExtractInvalid (an incomplete form; not audited) or ExtractRefused (audited
    with its reasons), or PseudonymKeyError when no key can be had."""
    policy = policy or load_extract_policy()
    problems = validation_problems(req, policy)
    if problems:
        raise ExtractInvalid(problems)
    now = datetime.now(UTC)
    today = today or now.date()
    register = store.project_register()
    detail: dict[str, Any] = {"via": via, "project": req.project, "variables": list(req.variables)}

    def refuse(reasons: list[str], suggestions: list[str]) -> ExtractRefused:
        store.audit(req.requester, "extract_refused", detail | {"reasons": reasons})
        return ExtractRefused(reasons, suggestions)

    project = register.get(req.project)
    reasons = refusals(project, req.requester, req.variables, today)
    if reasons or project is None:
        raise refuse(reasons, [])
    if out is not None:
        folders, files_ = forbidden_folders(work_dir, store)
        reasons = out_path_problems(
            out, forbidden_folders=folders, forbidden_files=files_, force=force
        )
        if reasons:
            raise refuse(reasons, [])
    folder = WorkFolder(work_dir)
    table_path = folder.research_table
    if not table_path.exists():
        raise refuse(
            [f"no research table at {table_path}: run the pipeline (`portal run`) first"], []
        )
    key = key or load_master_key(demo=demo, key_file=key_file)
    history = register.history(project.project_id)
    try:
        ex = build_extract(
            pl.read_parquet(table_path),
            pl.read_parquet(folder.geography),
            req,
            project=project,
            key=key,
            policy=policy,
            data_as_at=data_as_at,
            history=history,
            now=now,
        )
    except ExtractRefused as exc:
        raise refuse(exc.reasons, exc.suggestions) from None
    name = (
        out.name if out is not None else (data_name or f"{project.project_id}-{ex.extract_no}.csv")
    )
    files = render_extract(ex, name)
    cert = files.certificate
    register.record_extract(
        NewLedgerEntry(
            project_id=project.project_id,
            extract_no=ex.extract_no,
            researcher=req.requester,
            variables=tuple(req.variables),
            quasi_identifiers=ex.quasi_identifiers,
            levels=ex.levels,
            level_names=ex.level_names,
            pseudonym_columns=tuple(c for c in (PERSON, FAMILY) if c in ex.data.columns),
            sha256=cert["sha256"],
            records=ex.data.height,
            frame=ex.ledger_frame,
            file_path=str(out.expanduser().resolve()) if out is not None else None,
        ),
        audit_detail=detail
        | {
            "extract_no": ex.extract_no,
            "file": str(out.expanduser().resolve())
            if out is not None
            else f"{via} download {name}",
            "sha256": cert["sha256"],
            "k": cert["achieved"]["k_anonymity"],
            "l": cert["achieved"].get("l_diversity_distinct"),
            "records": cert["records"]["released"],
        },
    )
    # Recorded first: a file that fails to write is still counted as released, never the reverse.
    if out is not None:
        try:
            write_files(files, out)
        except OSError as e:
            store.audit(req.requester, "extract_write_failed", detail | {"error": str(e)})
            raise
    return files


def extract_from_work_dir(
    work_dir: Path,
    req: ExtractRequest,
    *,
    demo: bool,
    data_as_at: str,
    audit: ExtractStore,
    via: str,
    key_file: Path | None = None,
    data_name: str | None = None,
) -> ExtractFiles:
    """The door as the portal page calls it today: `audit` is the store."""
    return request_extract(
        audit, work_dir, req, data_as_at=data_as_at, via=via, demo=demo, key_file=key_file,
        data_name=data_name,
    )  # fmt: skip


def approved_for(store: ExtractStore, researcher: str, today: date | None = None) -> list[Any]:
    """The researcher's open, unexpired projects with their approved variables (for the page)."""
    from anonymise.projects import approved_projects

    return approved_projects(store.project_register().all(), researcher, today or date.today())
