"""Research extracts: per-project pseudonymised record-level files with a release certificate.

The only door from zone B to a researcher. `build_extract` is pure: it takes the
research table (pipelines/research.py), the geography lookup and the master
key, and returns the extract, its data dictionary and its certificate, or
raises `ExtractRefused` with the reasons and a coarser choice that would pass.
`write_extract` is the I/O edge: it writes the files, hashes the data file into
the certificate and records the extract in the audit log.

What the builder enforces, always:
- people on the objections register are removed first;
- person and family pseudonyms are re-keyed with a key derived for the project
  (HKDF of the master key and the project name), so two projects' extracts
  cannot be joined on them;
- quasi-identifiers among the chosen variables are generalised (full-domain,
  globally optimal: anonymise/lattice.py) and records suppressed until the
  policy's k (and l on a named sensitive variable) holds within the
  suppression limit, with the least information loss;
- the result is measured again independently (anonymise/risk.py) and the
  extract is refused if the measurement disagrees.
"""

from __future__ import annotations

import hashlib
import io
import json
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from anonymise.catalogue import ALWAYS, CATALOGUE, ID_DEFINITIONS, VarRole, variable
from anonymise.hierarchies import (
    Hierarchy,
    age_hierarchy,
    flat_hierarchy,
    hierarchy_from_mapping,
)
from anonymise.lattice import AnonymisationResult, LatticeTooLargeError, NoSolutionError, anonymise
from anonymise.pseudonymise import MasterKey, load_master_key, pseudonymise_series
from anonymise.risk import risk_report
from pipelines.contracts import ETHNIC_MAJOR_GROUP

EXTRACT_POLICY_PATH = Path(__file__).parent / "policies" / "extract.toml"


class ExtractRefused(Exception):
    """The extract cannot meet the policy; `reasons` says why and `suggestions` what would pass."""

    def __init__(self, reasons: list[str], suggestions: list[str]) -> None:
        self.reasons = reasons
        self.suggestions = suggestions
        text = "extract refused:\n" + "\n".join(f"  - {r}" for r in reasons)
        if suggestions:
            text += "\nwhat would pass:\n" + "\n".join(f"  - {s}" for s in suggestions)
        super().__init__(text)


@dataclass(frozen=True)
class ExtractPolicy:
    policy_id: str
    version: int
    k: int
    l: int  # noqa: E741 - the model's name
    suppression_limit: float
    min_k: int

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"


def load_extract_policy(path: Path = EXTRACT_POLICY_PATH) -> ExtractPolicy:
    raw = tomllib.loads(path.read_text())
    p = raw["policy"]
    pol = ExtractPolicy(
        policy_id=p["policy_id"],
        version=int(p["version"]),
        k=int(p["k"]),
        l=int(p["l"]),
        suppression_limit=float(p["suppression_limit"]),
        min_k=int(p["min_k"]),
    )
    problems = []
    if pol.k < pol.min_k:
        problems.append(f"k={pol.k} is below the floor min_k={pol.min_k}")
    if pol.l < 1:
        problems.append("l must be at least 1")
    if not 0 <= pol.suppression_limit <= 0.1:
        problems.append("suppression_limit must be between 0 and 0.1")
    if problems:
        raise ValueError(f"invalid extract policy {path}: " + "; ".join(problems))
    return pol


@dataclass(frozen=True)
class ExtractRequest:
    project: str
    purpose: str
    requester: str
    variables: tuple[str, ...]
    k: int | None = None
    l: int | None = None  # noqa: E741
    sensitive: str | None = None


@dataclass(frozen=True)
class Extract:
    data: pl.DataFrame
    dictionary: pl.DataFrame
    certificate: dict[str, Any]
    result: AnonymisationResult = field(repr=False)


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


def hierarchies_for(table: pl.DataFrame, geography: pl.DataFrame) -> dict[str, Hierarchy]:
    eth = {
        code: [ETHNIC_MAJOR_GROUP.get(code, "Not known"), "*"]
        for code in table["ethnicity"].unique().to_list()
    }
    return {
        "age": age_hierarchy("age", max_age=99),
        "sex": flat_hierarchy("sex", ["F", "M", "U"]),
        "ethnicity": _named(
            hierarchy_from_mapping("ethnicity", eth), ("ethnic group", "major group", "*")
        ),
        "lsoa": _geography_hierarchy(geography, table["lsoa"]),
    }


def _validate_request(
    req: ExtractRequest, policy: ExtractPolicy
) -> tuple[list[str], int, int | None]:
    problems = []
    if not req.project.strip():
        problems.append("a project name is required")
    if len(req.purpose.strip()) < 10:
        problems.append(
            "a purpose of at least 10 characters is required (it goes on the certificate)"
        )
    if not req.requester.strip():
        problems.append("the requester's name is required")
    for v in req.variables:
        if v not in CATALOGUE:
            problems.append(f"unknown variable {v!r}")
    if len(set(req.variables)) != len(req.variables):
        problems.append("a variable is listed twice")
    k = req.k if req.k is not None else policy.k
    if k < policy.min_k:
        problems.append(f"k={k} is below the policy's floor of {policy.min_k}")
    l_value = None
    if req.sensitive is not None:
        if req.sensitive not in req.variables:
            problems.append(
                f"the sensitive variable {req.sensitive!r} must be one of the variables"
            )
        elif req.sensitive in CATALOGUE and CATALOGUE[req.sensitive].role is not VarRole.SENSITIVE:
            problems.append(f"{req.sensitive!r} is not a sensitive variable in the catalogue")
        l_value = req.l if req.l is not None else policy.l
        if l_value < 1:
            problems.append("l must be at least 1")
    elif req.l is not None:
        problems.append("l-diversity needs --sensitive")
    return problems, k, l_value


def build_extract(
    table: pl.DataFrame,
    geography: pl.DataFrame,
    req: ExtractRequest,
    *,
    key: MasterKey,
    policy: ExtractPolicy,
    data_as_at: str,
    now: datetime | None = None,
) -> Extract:
    """Pure: research table in, protected extract (or ExtractRefused) out."""
    problems, k, l_value = _validate_request(req, policy)
    if problems:
        raise ExtractRefused(problems, [])
    variables = list(req.variables)
    before = table.height
    kept = table.filter(~pl.col("objected"))
    objectors = before - kept.height
    pkey = key.project_key(req.project)
    data = kept.select(
        pseudonymise_series(kept["person_id"], pkey, prefix="P").alias("person_id"),
        pseudonymise_series(kept["family_id"], pkey, prefix="F").alias("family_id"),
        *[
            pl.col(v).cast(pl.Utf8) if CATALOGUE[v].role is VarRole.QUASI_IDENTIFIER else pl.col(v)
            for v in variables
        ],
    )
    qis = [v for v in variables if CATALOGUE[v].role is VarRole.QUASI_IDENTIFIER]
    hier = hierarchies_for(kept, geography)
    if not qis:
        raise ExtractRefused(
            ["the request has no quasi-identifier, so k-anonymity cannot be shown for it"],
            ["add at least one of age, sex, ethnicity, lsoa (they will be generalised as needed)"],
        )
    try:
        result = anonymise(
            data,
            qis,
            {q: hier[q] for q in qis},
            k=k,
            l=l_value,
            sensitive=req.sensitive,
            suppression_limit=policy.suppression_limit,
        )
    except (NoSolutionError, LatticeTooLargeError) as e:
        reasons = [str(e.args[0])]
        if isinstance(e, NoSolutionError) and len(e.args) > 1:
            reasons.append(e.args[1].explain())
        raise ExtractRefused(
            reasons, _suggestions(data, qis, hier, k, l_value, req.sensitive, policy)
        ) from None
    out = result.data
    # Measure again with the independent risk engine: the certificate reports this, not the search.
    report = risk_report(out, qis, req.sensitive)
    if report.k < k or (l_value is not None and (report.l_distinct or 0) < l_value):
        raise ExtractRefused(
            [f"independent check failed: k={report.k}, l={report.l_distinct} after anonymisation"],
            [],
        )
    dictionary = _dictionary(variables, qis, result)
    stamp = (now or datetime.now(UTC)).replace(microsecond=0)
    certificate = {
        "certificate_version": 1,
        "project": req.project,
        "purpose": req.purpose,
        "requester": req.requester,
        "issued_at": stamp.isoformat(),
        "data_as_at": data_as_at,
        "policy": {
            "id": policy.ref,
            "k": k,
            "l": l_value,
            "sensitive": req.sensitive,
            "suppression_limit": policy.suppression_limit,
        },
        "variables": variables,
        "quasi_identifiers": qis,
        "transformation": {q: result.level_names[q] for q in qis},
        "transformation_levels": result.transformation,
        "achieved": report.to_dict(include_classes=False),
        "information_loss": result.loss.to_dict(),
        "records": {
            "in_research_table": before,
            "objectors_excluded": objectors,
            "suppressed": result.suppressed,
            "released": out.height,
        },
        "pseudonyms": (
            "re-keyed for this project (HKDF-SHA256 of the master key and the project name)"
        ),
        "search": {"nodes_evaluated": result.nodes_evaluated, "lattice_size": result.lattice_size},
    }
    return Extract(out, dictionary, certificate, result)


def _suggestions(
    data: pl.DataFrame,
    qis: list[str],
    hier: dict[str, Hierarchy],
    k: int,
    l_value: int | None,
    sensitive: str | None,
    policy: ExtractPolicy,
) -> list[str]:
    """Which single change would pass: leaving out one QI, or the sensitive variable."""
    out = []
    for q in qis:
        rest = [x for x in qis if x != q]
        if not rest:
            continue
        try:
            r = anonymise(
                data,
                rest,
                {x: hier[x] for x in rest},
                k=k,
                l=l_value,
                sensitive=sensitive,
                suppression_limit=policy.suppression_limit,
            )
        except (NoSolutionError, LatticeTooLargeError):
            continue
        levels = ", ".join(f"{x} as {r.level_names[x]}" for x in rest)
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
        out.append("ask for fewer quasi-identifiers, or for a smaller k if the policy allows it")
    return out


def _dictionary(variables: list[str], qis: list[str], result: AnonymisationResult) -> pl.DataFrame:
    rows = [
        {"variable": name, "title": name.replace("_", " "), "type": "pseudonym", "role": "key",
         "definition": ID_DEFINITIONS[name], "released_as": "project pseudonym"}
        for name in ALWAYS
    ]  # fmt: skip
    for v in variables:
        var = variable(v)
        released = f"generalised to {result.level_names[v]}" if v in qis else "as recorded"
        rows.append(
            {
                "variable": v,
                "title": var.title,
                "type": var.dtype,
                "role": var.role.value,
                "definition": var.definition,
                "released_as": released,
            }
        )
    return pl.DataFrame(rows)


def certificate_text(cert: dict[str, Any]) -> str:
    a = cert["achieved"]
    lines = [
        "RESEARCH EXTRACT RELEASE CERTIFICATE",
        "",
        f"Project:        {cert['project']}",
        f"Purpose:        {cert['purpose']}",
        f"Requested by:   {cert['requester']}",
        f"Issued:         {cert['issued_at']}",
        f"Data as at:     {cert['data_as_at']}",
        f"Policy:         {cert['policy']['id']} (k={cert['policy']['k']}"
        + (
            f", l={cert['policy']['l']} on {cert['policy']['sensitive']}"
            if cert["policy"]["l"]
            else ""
        )
        + f", suppression limit {cert['policy']['suppression_limit']:.0%})",
        "",
        f"Variables:      {', '.join(cert['variables'])}",
        "Quasi-identifiers and how they are released: "
        + "; ".join(f"{q}: {lvl}" for q, lvl in cert["transformation"].items()),
        "",
        f"Achieved:       k = {a['k_anonymity']}"
        + (f", distinct l = {a['l_diversity_distinct']}" if a.get("l_diversity_distinct") else "")
        + f", {a['equivalence_classes']} classes, average size {a['average_class_size']:.1f}",
        f"Highest prosecutor risk: {a['reidentification']['prosecutor']['highest']:.3f}",
        f"Records:        {cert['records']['released']} released, "
        f"{cert['records']['suppressed']} suppressed, "
        f"{cert['records']['objectors_excluded']} excluded (objections)",
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
    """The extract as files: what `write_extract` writes and the portal offers for download."""

    data_name: str
    data: bytes
    dictionary: bytes
    certificate_json: bytes
    certificate_text: bytes
    certificate: dict[str, Any]


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


def write_files(files: ExtractFiles, out: Path) -> None:
    """Write the data file to `out` and the dictionary and certificates beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    out.write_bytes(files.data)
    Path(f"{stem}.dictionary.csv").write_bytes(files.dictionary)
    Path(f"{stem}.certificate.json").write_bytes(files.certificate_json)
    Path(f"{stem}.certificate.txt").write_bytes(files.certificate_text)


def write_extract(extract: Extract, out: Path) -> dict[str, Any]:
    """Write data, dictionary and certificate (JSON + text); return the final certificate."""
    files = render_extract(extract, out.name)
    write_files(files, out)
    return files.certificate


class Auditor(Protocol):
    def audit(self, actor: str, action: str, detail: dict[str, Any] | None = None) -> Any: ...


def extract_from_work_dir(
    work_dir: Path,
    req: ExtractRequest,
    *,
    demo: bool,
    data_as_at: str,
    audit: Auditor,
    via: str,
    key_file: Path | None = None,
    data_name: str | None = None,
) -> ExtractFiles:
    """The door the CLI and the portal use: zone B's research table in, extract files out.

    Loads the master key (refusing without one outside demo mode), the research table and
    the geography lookup, builds the extract (or raises ExtractRefused) and renders it.
    Every extract, and every refusal with its reasons, is written to the audit log."""
    detail: dict[str, Any] = {
        "via": via,
        "project": req.project,
        "purpose": req.purpose,
        "variables": list(req.variables),
    }
    table_path = work_dir / "zone_b" / "research_table.parquet"
    try:
        if not table_path.exists():
            raise ExtractRefused(
                [f"no research table at {table_path}: run the pipeline (`portal run`) first"], []
            )
        key = load_master_key(demo=demo, key_file=key_file)
        ex = build_extract(
            pl.read_parquet(table_path),
            pl.read_parquet(work_dir / "zone_b" / "geography.parquet"),
            req,
            key=key,
            policy=load_extract_policy(),
            data_as_at=data_as_at,
        )
    except ExtractRefused as exc:
        audit.audit(req.requester, "extract_refused", detail | {"reasons": exc.reasons})
        raise
    if data_name is None:
        safe_project = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in req.project)
        data_name = f"{safe_project or 'extract'}.csv"
    files = render_extract(ex, data_name)
    cert = files.certificate
    audit.audit(
        req.requester,
        "extract",
        detail
        | {
            "file": cert["file"],
            "sha256": cert["sha256"],
            "k": cert["achieved"]["k_anonymity"],
            "l": cert["achieved"].get("l_diversity_distinct"),
            "records": cert["records"]["released"],
        },
    )
    return files
