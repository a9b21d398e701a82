"""Erasure and restriction requests: kept as keyed tokens, applied by every run.

A request names a person by any identifier the council holds (NHS, NI or UPN number, the
social care person number, or name with date of birth and postcode). What is kept is the
minimum needed to keep honouring it: for each identifier given, a keyed token (HMAC-SHA256
of the normalised value, under a key derived from the pseudonymisation master key), the
kinds of identifier given, the request's type, status and dates. Never a name or a number:
the store alone cannot say whom a request is about, and without the master key nobody can
test a guess against it.

Every run computes the same tokens for every linked record and removes each person with a
record matching an active request from zone B (`zone_b.build_zone_b(removed=...)`), so the
person leaves every future release and research extract. Published history changes only
through the revisions policy. An erasure is permanent; a restriction can be lifted.

The functions an admin page calls: `list_requests`, `request_counts`, `add_request`,
`lift_request`. Each step is audited (request id, type, identifier kinds, counts).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from anonymise.hierarchies import normalise_postcode
from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.identifiers import is_valid_nhs_number, is_valid_ni_number, is_valid_upn
from pipelines.ingest import POSTCODE_RE, standardise_name
from pipelines.store import Store, subject_requests

REQUEST_KINDS = ("erasure", "restriction")
IDENTIFIER_KINDS = ("nhs_number", "ni_number", "upn", "lcs_person_id", "name_dob_postcode")
# The name of the derived key's purpose, not a secret.
TOKEN_PROJECT = "subject-requests/v1"  # noqa: S105


class RequestError(ValueError):
    """A request cannot be recorded or changed; every problem is listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


# --- identifiers and tokens -------------------------------------------------------------------


def _postcode(value: str) -> str | None:
    pc = pl.select(normalise_postcode(pl.lit(value)).alias("p"))["p"][0]
    return pc if pc is not None and re.match(POSTCODE_RE, pc) else None


def normalise_identifiers(
    *,
    nhs_number: str | None = None,
    ni_number: str | None = None,
    upn: str | None = None,
    lcs_person_id: str | None = None,
    forename: str | None = None,
    surname: str | None = None,
    dob: str | date | None = None,
    postcode: str | None = None,
) -> dict[str, str]:
    """Each identifier given, normalised exactly as ingest normalises records. Problems
    name the field, never echo its value."""
    problems: list[str] = []
    out: dict[str, str] = {}
    if nhs_number:
        v = re.sub(r"[\s-]", "", nhs_number)
        if is_valid_nhs_number(v):
            out["nhs_number"] = v
        else:
            problems.append("the NHS number is not valid (10 digits with a check digit)")
    if ni_number:
        v = re.sub(r"\s", "", ni_number).upper()
        if is_valid_ni_number(v):
            out["ni_number"] = v
        else:
            problems.append("the National Insurance number is not valid")
    if upn:
        v = re.sub(r"\s", "", upn).upper()
        if is_valid_upn(v):
            out["upn"] = v
        else:
            problems.append("the UPN is not valid")
    if lcs_person_id:
        v = re.sub(r"\s", "", lcs_person_id).upper()
        if v:
            out["lcs_person_id"] = v
    parts = {"forename": forename, "surname": surname, "dob": dob, "postcode": postcode}
    given = {k for k, v in parts.items() if v}
    if given:
        missing = sorted(set(parts) - given)
        fn = standardise_name(forename) if forename else None
        sn = standardise_name(surname) if surname else None
        born: date | None = None
        if isinstance(dob, date):
            born = dob
        elif dob:
            try:
                born = date.fromisoformat(dob.strip())
            except ValueError:
                problems.append("the date of birth must be YYYY-MM-DD")
        pc = _postcode(postcode) if postcode else None
        if postcode and pc is None:
            problems.append("the postcode is not a valid UK postcode")
        if missing:
            problems.append(
                "name, date of birth and postcode are used together; missing: " + ", ".join(missing)
            )
        elif fn and sn and born and pc:
            out["name_dob_postcode"] = f"{fn}|{sn}|{born.isoformat()}|{pc}"
    if not out and not problems:
        problems.append(
            "give at least one identifier: NHS number, NI number, UPN, social care person "
            "number, or name with date of birth and postcode"
        )
    if problems:
        raise RequestError(problems)
    return out


def _token_key(key: MasterKey) -> Any:
    return key.project_key(TOKEN_PROJECT)


def tokens_for(key: MasterKey, identifiers: Mapping[str, str]) -> dict[str, str]:
    """The keyed token of each normalised identifier (kind-tagged, so an NHS number and a
    UPN with the same characters never collide)."""
    kinds = sorted(identifiers)
    values = pl.Series("v", [f"{k}:{identifiers[k]}" for k in kinds])
    hashed = pseudonymise_series(values, _token_key(key)).to_list()
    return dict(zip(kinds, hashed, strict=True))


def record_tokens(records: pl.DataFrame, key: MasterKey) -> pl.DataFrame:
    """person_key and token for every identifier every linked record carries (the same
    normalisation as `normalise_identifiers`: ingest has already standardised names,
    postcodes and checked the numbers' checksums)."""
    name = pl.concat_str(
        pl.col("forename"),
        pl.col("surname"),
        pl.col("dob").dt.strftime("%Y-%m-%d"),
        pl.col("postcode"),
        separator="|",
    )
    exprs = {
        "nhs_number": pl.col("nhs_number"),
        "ni_number": pl.col("ni_number"),
        "upn": pl.col("upn"),
        "lcs_person_id": pl.col("lcs_person_id").str.replace_all(r"\s", "").str.to_uppercase(),
        "name_dob_postcode": name,
    }
    parts = [
        records.select("person_key", (pl.lit(f"{k}:") + e).alias("value")).drop_nulls()
        for k, e in exprs.items()
    ]
    values = pl.concat(parts).unique()
    return values.with_columns(
        pseudonymise_series(values["value"], _token_key(key)).alias("token")
    ).select("person_key", "token")


# --- the register of requests ------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def add_request(
    store: Store,
    key: MasterKey,
    kind: str,
    identifiers: Mapping[str, str],
    *,
    received_on: date,
    actor: str,
) -> str:
    """Record a request as tokens (identifiers as returned by `normalise_identifiers`)."""
    if kind not in REQUEST_KINDS:
        raise RequestError([f"the type must be one of {', '.join(REQUEST_KINDS)}"])
    if not identifiers:
        raise RequestError(["a request needs at least one identifier"])
    tokens = tokens_for(key, identifiers)
    request_id = f"REQ-{_now():%Y%m%d}-{secrets.token_hex(4)}"
    with store.engine.begin() as conn:
        conn.execute(
            subject_requests.insert().values(
                request_id=request_id,
                kind=kind,
                received_on=received_on,
                tokens=sorted(tokens.values()),
                identifier_kinds=sorted(tokens),
                status="active",
                created_at=_now(),
                created_by=actor,
            )
        )
    store.audit(
        actor,
        "request_added",
        {
            "request_id": request_id,
            "type": kind,
            "received_on": received_on.isoformat(),
            "identifier_kinds": sorted(tokens),
        },
    )
    return request_id


def lift_request(store: Store, request_id: str, *, actor: str) -> None:
    """Lift a restriction (the person is processed again from the next run). Erasures are
    permanent and cannot be lifted."""
    with store.engine.begin() as conn:
        row = (
            conn.execute(
                sa.select(subject_requests.c.kind, subject_requests.c.status).where(
                    subject_requests.c.request_id == request_id
                )
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            raise RequestError([f"no request {request_id!r}"])
        if row["kind"] != "restriction":
            raise RequestError([f"{request_id} is an erasure: erasures cannot be lifted"])
        if row["status"] != "active":
            raise RequestError([f"{request_id} is already {row['status']}"])
        conn.execute(
            subject_requests.update()
            .where(subject_requests.c.request_id == request_id)
            .values(status="lifted", closed_at=_now())
        )
    store.audit(actor, "request_lifted", {"request_id": request_id, "type": "restriction"})


_LIST_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "type": pl.String(),
    "received_on": pl.Date(),
    "status": pl.String(),
    "identifier_kinds": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
    "created_by": pl.String(),
    "closed_at": pl.Datetime("us", "UTC"),
    "last_run_at": pl.Datetime("us", "UTC"),
    "people_matched_last_run": pl.Int64(),
}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def list_requests(store: Store) -> pl.DataFrame:
    """Every request with its status (newest first); tokens are never returned."""
    q = sa.select(subject_requests).order_by(subject_requests.c.created_at.desc())
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pl.DataFrame(
        {
            "request_id": [r["request_id"] for r in rows],
            "type": [r["kind"] for r in rows],
            "received_on": [r["received_on"] for r in rows],
            "status": [r["status"] for r in rows],
            "identifier_kinds": [", ".join(_list(r["identifier_kinds"])) for r in rows],
            "created_at": [_utc(r["created_at"]) for r in rows],
            "created_by": [r["created_by"] for r in rows],
            "closed_at": [_utc(r["closed_at"]) for r in rows],
            "last_run_at": [_utc(r["last_run_at"]) for r in rows],
            "people_matched_last_run": [r["last_matched"] for r in rows],
        },
        schema=_LIST_SCHEMA,
    )


def request_counts(store: Store) -> dict[str, int]:
    """How many requests of each type and status, and how many are waiting for a run."""
    df = list_requests(store)
    out = {f"{k}_{s}": 0 for k in REQUEST_KINDS for s in ("active", "lifted")}
    for (kind, status), n in (
        df.group_by("type", "status").len().rows_by_key(["type", "status"], unique=True).items()
    ):
        out[f"{kind}_{status}"] = int(n[0])
    out["active_not_yet_applied"] = df.filter(
        (pl.col("status") == "active") & pl.col("last_run_at").is_null()
    ).height
    out["active_matching_nobody"] = df.filter(
        (pl.col("status") == "active") & (pl.col("people_matched_last_run") == 0)
    ).height
    return out


def _list(value: Any) -> list[str]:
    import json

    return list(json.loads(value) if isinstance(value, str) else value or [])


@dataclass(frozen=True)
class RequestMatches:
    removed: pl.Series  # person keys to leave out of zone B
    per_request: pl.DataFrame  # request_id, kind, people (persons matched)

    def counts(self) -> dict[str, int]:
        active = self.per_request
        return {
            "active_requests": active.height,
            "erasure_requests": active.filter(pl.col("kind") == "erasure").height,
            "restriction_requests": active.filter(pl.col("kind") == "restriction").height,
            "requests_matching_nobody": active.filter(pl.col("people") == 0).height,
            "people_removed": self.removed.len(),
        }


def active_requests(store: Store) -> pl.DataFrame:
    q = sa.select(
        subject_requests.c.request_id, subject_requests.c.kind, subject_requests.c.tokens
    ).where(subject_requests.c.status == "active")
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return pl.DataFrame(
        {
            "request_id": [r["request_id"] for r in rows],
            "kind": [r["kind"] for r in rows],
            "tokens": [_list(r["tokens"]) for r in rows],
        },
        schema={"request_id": pl.String, "kind": pl.String, "tokens": pl.List(pl.String)},
    )


def match_requests(records: pl.DataFrame, requests: pl.DataFrame, key: MasterKey) -> RequestMatches:
    """Pure: linked records and the active requests in, the persons to leave out."""
    empty = pl.Series("person_key", [], dtype=records.schema.get("person_key", pl.Int64))
    if requests.height == 0:
        return RequestMatches(
            empty, requests.select("request_id", "kind", pl.lit(0).alias("people"))
        )
    tokens = record_tokens(records, key)
    wanted = requests.explode("tokens").rename({"tokens": "token"})
    hits = wanted.join(tokens, on="token", how="inner")
    per_request = (
        requests.select("request_id", "kind")
        .join(
            hits.group_by("request_id").agg(pl.col("person_key").n_unique().alias("people")),
            on="request_id",
            how="left",
        )
        .with_columns(pl.col("people").fill_null(0).cast(pl.Int64))
    )
    removed = hits["person_key"].unique().sort()
    return RequestMatches(removed, per_request)


def record_applied(store: Store, matches: RequestMatches, *, actor: str, run_id: str) -> None:
    """Note on each active request when it was last applied and to how many people; one
    audit entry with counts only."""
    now = _now()
    with store.engine.begin() as conn:
        for row in matches.per_request.iter_rows(named=True):
            conn.execute(
                subject_requests.update()
                .where(subject_requests.c.request_id == row["request_id"])
                .values(last_run_at=now, last_matched=int(row["people"]))
            )
    store.audit(actor, "requests_applied", {"run_id": run_id, **matches.counts()})
