"""Zone A -> zone B: the pseudonymous person and family index and event tables.

What leaves zone A, and in what form:
- a person becomes a keyed pseudonym (HMAC-SHA256 under the zone B key,
  derived from the master key). The value hashed is the person's *anchor*: the
  most stable identifier their linked records carry (NHS number, else NI
  number, else UPN, else social care id, else standardised name and date of
  birth), so the same person keeps the same pseudonym from run to run and
  disclosure-control record keys stay persistent;
- a family becomes a pseudonym of its lowest member pseudonym;
- date of birth becomes month of birth (enough for age bands and ages at
  events, to within a month); address and postcode become LSOA, ward and
  locality from the public postcode lookup;
- names, dates of birth, addresses, postcodes and NHS/NI/UPN never leave.
Event tables keep their dates and codes, the person and family pseudonyms, and
nothing that identifies anyone directly.

Objections and requests (pipelines/objections.py, pipelines/requests.py) arrive as
person keys. A person under an erasure or restriction request is not carried into
zone B at all. An objector is, with what the objection covers: `objected` (left out
of research extracts: any objection), `objected_statistics` (left out of every
statistic too: scope PLANNING_AND_RESEARCH) and `objection_received` (the day that
objection was received, for the published count of objections).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.contracts import Role, get_contract
from pipelines.ingest import IngestResult

ZONE_B_PROJECT = "zone-b-internal"


@dataclass(frozen=True)
class ZoneB:
    # person_id, family_id, sex, birth_month, ethnicity, lsoa/ward/locality, objected,
    # objected_statistics, objection_received
    persons: pl.DataFrame
    events: dict[str, pl.DataFrame]  # per source: person_id, family_id, event columns


def load_postcode_lookup(raw_dir: Path) -> pl.DataFrame | None:
    p = raw_dir / "reference" / "postcode_lookup.csv"
    if not p.exists():
        return None
    return pl.read_csv(p, infer_schema=False)


def modes(frame: pl.DataFrame, key: str, columns: dict[str, str]) -> pl.DataFrame:
    """Per `key`, the most common non-null value of each column (renamed as `columns`
    says), the smallest on a tie, null when the key has none. Counted as (key, value) pairs
    and filtered to each key's largest count: the same answer as
    `drop_nulls().mode().sort().first()` in a group_by, which polars runs group by group
    and which was most of the pseudonymise stage."""
    out = frame.select(key).unique()
    for column, name in columns.items():
        counts = frame.select(key, column).drop_nulls(column).group_by(key, column).len()
        top = (
            counts.filter(pl.col("len") == pl.col("len").max().over(key))
            .group_by(key)
            .agg(pl.col(column).min().alias(name))
        )
        out = out.join(top, on=key, how="left")
    return out


def person_anchors(records: pl.DataFrame) -> pl.DataFrame:
    """One anchor per person_key: the most stable identifier the person's records carry."""
    name_dob = pl.concat_str(
        pl.lit("N:"), pl.col("surname"), pl.lit("|"), pl.col("forename"), pl.lit("|"),
        pl.col("dob").dt.strftime("%Y-%m-%d"),
    )  # fmt: skip
    named = records.with_columns(name_dob.alias("_namedob"))
    agg = modes(
        named,
        "person_key",
        {"nhs_number": "nhs", "ni_number": "ni", "upn": "upn", "lcs_person_id": "lcs",
         "_namedob": "namedob"},
    ).join(
        named.group_by("person_key").agg(pl.col("unique_id").min().alias("first_uid")),
        on="person_key",
    )  # fmt: skip
    return agg.select(
        "person_key",
        pl.coalesce(
            pl.lit("NHS:") + pl.col("nhs"),
            pl.lit("NI:") + pl.col("ni"),
            pl.lit("UPN:") + pl.col("upn"),
            pl.lit("LCS:") + pl.col("lcs"),
            pl.col("namedob"),
            pl.lit("UID:") + pl.col("first_uid"),
        ).alias("anchor"),
    )


OBJECTION_FLAGS_SCHEMA = {
    "person_key": pl.Int64,
    "statistics": pl.Boolean,
    "statistics_from": pl.Date,
}


def person_pseudonyms(linked: pl.DataFrame, key: MasterKey) -> pl.DataFrame:
    """person_key -> person_id (the zone B pseudonym of each linked person's anchor)."""
    anchors = person_anchors(linked)
    return anchors.with_columns(
        pseudonymise_series(anchors["anchor"], key.project_key(ZONE_B_PROJECT), prefix="p").alias(
            "person_id"
        )
    ).select("person_key", "person_id")


def build_zone_b(
    linked: pl.DataFrame,
    results: dict[str, IngestResult],
    key: MasterKey,
    lookup: pl.DataFrame | None,
    *,
    objections: pl.DataFrame | None = None,
    removed: pl.Series | None = None,
) -> ZoneB:
    """Pure: linked zone A records in, pseudonymous persons and events out.

    objections: person_key, statistics (bool), statistics_from (date) for every objector;
    removed: person keys under an erasure or restriction request (left out entirely)."""
    if removed is not None and removed.len():
        linked = linked.filter(~pl.col("person_key").is_in(removed.implode()))
    flags = (
        pl.DataFrame(schema=OBJECTION_FLAGS_SCHEMA)
        if objections is None
        else objections.select(pl.col(c).cast(t) for c, t in OBJECTION_FLAGS_SCHEMA.items())
    )
    zkey = key.project_key(ZONE_B_PROJECT)
    anchors = person_pseudonyms(linked, key)
    fam = (
        linked.select("person_key", "family_key")
        .unique()
        .join(anchors.select("person_key", "person_id"), on="person_key")
    )
    fam_ids = fam.group_by("family_key").agg(pl.col("person_id").min().alias("_fam_anchor"))
    fam_ids = fam_ids.with_columns(
        pseudonymise_series("family:" + fam_ids["_fam_anchor"], zkey, prefix="f").alias("family_id")
    )
    ids = fam.join(fam_ids.select("family_key", "family_id"), on="family_key").select(
        "person_key", "person_id", "family_id"
    )

    # Person attributes: most common recorded value; latest known postcode for geography.
    eth = pl.concat(
        [
            r.accepted.select(
                pl.concat_str(pl.lit(n), pl.lit(":"), "record_id").alias("unique_id"), "ethnicity"
            )
            for n, r in results.items()
            if "ethnicity" in r.accepted.columns
        ]
    )
    rec = linked.join(eth, on="unique_id", how="left")
    latest_pc = (
        rec.filter(pl.col("postcode").is_not_null())
        .sort("event_date", nulls_last=False)
        .group_by("person_key")
        .agg(pl.col("postcode").last())
    )
    persons = (
        modes(rec, "person_key", {"sex": "sex", "dob": "birth_month", "ethnicity": "ethnicity"})
        .with_columns(pl.col("birth_month").dt.strftime("%Y-%m"))
        .join(latest_pc, on="person_key", how="left")
        .join(
            flags.with_columns(pl.col("person_key").cast(rec.schema["person_key"])),
            on="person_key",
            how="left",
        )
        .with_columns(
            pl.col("statistics").is_not_null().alias("objected"),
            pl.col("statistics").fill_null(False).alias("objected_statistics"),
            pl.col("statistics_from").alias("objection_received"),
        )
        .drop("statistics", "statistics_from")
    )
    if lookup is not None:
        persons = persons.join(
            lookup.select(
                "postcode", "lsoa_code", "ward_code", "ward", "locality_code", "locality"
            ),
            on="postcode",
            how="left",
        )
    else:
        persons = persons.with_columns(
            pl.lit(None, pl.Utf8).alias(c)
            for c in ("lsoa_code", "ward_code", "ward", "locality_code", "locality")
        )
    persons = (
        persons.join(ids, on="person_key")
        .drop("postcode", "person_key")
        .select("person_id", "family_id", pl.exclude("person_id", "family_id"))
        .sort("person_id")
    )

    events: dict[str, pl.DataFrame] = {}
    key_of = linked.select("unique_id", "person_key").join(ids, on="person_key").drop("person_key")
    for name, r in results.items():
        if name == "objections":
            continue  # the register's only use downstream is the objection flags
        c = get_contract(name)
        keep = [col.name for col in c.columns if col.role not in (Role.DIRECT_IDENTIFIER, Role.KEY)]
        keep = [k for k in keep if k not in ("ehm_family_ref",)]
        ev = (
            r.accepted.with_columns(
                pl.concat_str(pl.lit(name), pl.lit(":"), "record_id").alias("unique_id")
            )
            .join(key_of, on="unique_id", how="inner")
            .select("person_id", "family_id", *[k for k in keep if k != "sex"])
        )
        if "episode_id" in ev.columns:
            ev = ev.with_columns(
                pseudonymise_series(ev["episode_id"], zkey, prefix="e").alias("episode_id")
            )
        if "incident_ref" in ev.columns:
            ev = ev.with_columns(
                pseudonymise_series(ev["incident_ref"], zkey, prefix="i").alias("incident_ref")
            )
        if "lead_practitioner" in ev.columns:
            # A member of staff's reference: derive needs only whether one was allocated
            # (a claim rule), so zone B keeps "allocated" or null, never who.
            lead = pl.col("lead_practitioner").cast(pl.String).str.strip_chars()
            ev = ev.with_columns(
                pl.when(lead.is_not_null() & (lead != ""))
                .then(pl.lit("allocated"))
                .otherwise(None)
                .alias("lead_practitioner")
            )
        events[name] = ev
    return ZoneB(persons=persons, events=events)
