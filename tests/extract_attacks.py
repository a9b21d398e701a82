"""A motivated intruder against research extracts: the four attacks of issue 10.

Each attack takes what a researcher was given (extract frames and the level each
column was released at, as the certificate says) and outside knowledge built from
the synthetic county's zone A truth, and returns how many targets were re-identified:
matched to exactly one record, and that record is truly them.

The module does not depend on how the extracts were built, so the same code measures
the old builder (before) and the new one (after). How the intruder turns what they
know into a released value is passed in as `generalise(variable, values, level)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.zone_b import ZONE_B_PROJECT, person_anchors

Generalise = Callable[[str, pl.Series, int], pl.Series]
DEMOGRAPHICS = ("age", "sex", "ethnicity", "lsoa")


@dataclass(frozen=True)
class Rate:
    attack: str
    targets: int
    matched_uniquely: int
    correct: int

    @property
    def rate(self) -> float:
        return self.correct / self.targets if self.targets else 0.0

    def line(self) -> str:
        return (
            f"{self.attack}: {self.targets} targets, {self.matched_uniquely} matched to one "
            f"record, {self.correct} correct ({self.rate:.2%})"
        )


@dataclass(frozen=True)
class Released:
    """One extract as the researcher holds it, with each column's released level."""

    data: pl.DataFrame
    levels: Mapping[str, int]


@dataclass(frozen=True)
class County:
    """Zone A truth for the intruder's register and for scoring, keyed by zone B pseudonym."""

    register: pl.DataFrame  # true person_id, family, age, sex, ethnicity, lsoa
    zb_to_true: pl.DataFrame  # zb (zone B person pseudonym), true_person
    research: pl.DataFrame  # the zone B research table with true_person


def load_county(raw: Path, work: Path, key: MasterKey, as_at: date) -> County:
    linked = pl.read_parquet(work / "zone_a" / "linked_records.parquet")
    truth = pl.read_csv(raw / "truth" / "records.csv", infer_schema=False).select(
        pl.concat_str("source", pl.lit(":"), "record_id").alias("unique_id"), "person_id"
    )
    anchors = person_anchors(linked)
    anchors = anchors.with_columns(
        pseudonymise_series(anchors["anchor"], key.project_key(ZONE_B_PROJECT), prefix="p").alias(
            "zb"
        )
    )
    zb_to_true = (
        linked.join(truth, on="unique_id")
        .group_by("person_key", "person_id")
        .len()
        .sort("len", "person_id", descending=[True, False])
        .unique("person_key", keep="first", maintain_order=True)
        .join(anchors.select("person_key", "zb"), on="person_key")
        .select("zb", pl.col("person_id").alias("true_person"))
    )
    people = pl.read_csv(raw / "truth" / "people.csv", infer_schema=False)
    hist = pl.read_csv(raw / "truth" / "address_history.csv", infer_schema=False)
    latest = (
        hist.filter(pl.col("moved_in") <= str(as_at))
        .sort("moved_in")
        .group_by("family_id")
        .agg(pl.col("lsoa_code").last().alias("lsoa"))
    )
    register = people.join(latest, on="family_id", how="left").select(
        pl.col("person_id").alias("true_person"),
        pl.col("family_id").alias("true_family"),
        ((pl.lit(as_at) - pl.col("dob").str.to_date()).dt.total_days() / 365.25)
        .floor()
        .cast(pl.Int64)
        .clip(0, 99)
        .cast(pl.String)
        .alias("age"),
        "sex",
        "ethnicity",
        pl.col("lsoa").fill_null("Not known"),
    )
    research = pl.read_parquet(work / "zone_b" / "research_table.parquet").join(
        zb_to_true, left_on="person_id", right_on="zb", how="left"
    )
    return County(register, zb_to_true, research)


def truth_of(county: County, key: MasterKey, project_key_name: str) -> pl.DataFrame:
    """Extract pseudonym -> true person, for scoring (the intruder never has this)."""
    return county.zb_to_true.select(
        pseudonymise_series(county.zb_to_true["zb"], key.project_key(project_key_name), prefix="P")
        .alias("person_id"),
        "true_person",
    )  # fmt: skip


def _score(attack: str, matches: pl.DataFrame, truth: pl.DataFrame, targets: int) -> Rate:
    """matches: target (true person), person_id (extract pseudonym) per candidate record."""
    per_target = matches.group_by("target").len()
    unique = matches.join(per_target.filter(pl.col("len") == 1), on="target", how="semi")
    correct = unique.join(truth, on="person_id").filter(pl.col("true_person") == pl.col("target"))
    return Rate(attack, targets, unique.height, correct.height)


def _intruder_values(
    frame: pl.DataFrame,
    columns: Mapping[str, str],
    levels: Mapping[str, int],
    generalise: Generalise,
) -> pl.DataFrame:
    """Generalise what the intruder knows (column -> the variable it is) to released levels."""
    return frame.with_columns(
        generalise(var, frame[col], levels[var]).alias(col) for col, var in columns.items()
    )


def joined_extracts_attack(
    extracts: Sequence[Released],
    county: County,
    truth: pl.DataFrame,
    generalise: Generalise,
) -> Rate:
    """(a) Join a project's extracts on person_id; match a register of name, DOB, sex,
    ethnicity and address against every demographic column any extract released."""
    joined: pl.DataFrame | None = None
    columns: dict[str, str] = {}
    levels: dict[str, int] = {}
    for i, ex in enumerate(extracts):
        demo = [q for q in DEMOGRAPHICS if q in ex.data.columns]
        part = ex.data.select("person_id", *[pl.col(q).alias(f"{q}#{i}") for q in demo])
        for q in demo:
            columns[f"{q}#{i}"] = q
            levels[f"{q}#{i}"] = ex.levels[q]
        joined = part if joined is None else joined.join(part, on="person_id", how="inner")
    assert joined is not None
    # Targets: everyone on the register who is in every extract (worst case for us).
    in_all = truth.join(joined.select("person_id"), on="person_id", how="semi")
    targets = county.register.join(in_all.select("true_person"), on="true_person", how="semi")
    known = targets.select(
        pl.col("true_person").alias("target"), *[pl.col(v).alias(c) for c, v in columns.items()]
    )
    known = known.with_columns(
        generalise(v, known[c], levels[c]).alias(c) for c, v in columns.items()
    )
    matches = known.join(joined, on=list(columns), how="inner").select("target", "person_id")
    return _score("joined extracts vs register", matches, truth, targets.height)


def known_attribute_attack(
    extract: Released,
    county: County,
    truth: pl.DataFrame,
    generalise: Generalise,
    attribute: str,
    raw_of: Callable[[pl.DataFrame], pl.Series],
) -> Rate:
    """(b) An intruder who knows name, DOB, sex, postcode and one attribute recorded by an
    outside body (the referral month the referrer knows, the absence the school knows)."""
    demo = [q for q in ("age", "sex", "lsoa") if q in extract.data.columns]
    have = county.research.filter(raw_of(county.research).is_not_null())
    targets = county.register.join(have.select("true_person"), on="true_person", how="inner")
    targets = targets.join(
        have.select("true_person", raw_of(have).alias("_known")), on="true_person"
    )
    known = targets.select(
        pl.col("true_person").alias("target"),
        *[generalise(q, targets[q], extract.levels[q]).alias(q) for q in demo],
        generalise(attribute, targets["_known"], extract.levels[attribute]).alias(attribute),
    )
    released = extract.data.select(
        "person_id", *demo, pl.col(attribute).cast(pl.String).alias(attribute)
    )
    matches = known.join(released, on=[*demo, attribute], how="inner").select("target", "person_id")
    return _score(f"intruder knowing {attribute}", matches, truth, targets.height)


def shared_columns_attack(
    a: Released,
    b: Released,
    truth_a: pl.DataFrame,
    truth_b: pl.DataFrame,
    coarsen: Callable[[str, pl.Series, int, int], pl.Series],
) -> Rate:
    """(c) Two projects' extracts, different pseudonyms: link records unique on the columns
    both hold (compared at the coarser of the two levels) and count the true links."""
    shared = [
        c for c in a.data.columns if c in b.data.columns and c not in ("person_id", "family_id")
    ]
    top = {c: max(a.levels[c], b.levels[c]) for c in shared}
    fa = a.data.select(
        "person_id", *[coarsen(c, a.data[c], a.levels[c], top[c]).alias(c) for c in shared]
    )
    fb = b.data.select(
        "person_id", *[coarsen(c, b.data[c], b.levels[c], top[c]).alias(c) for c in shared]
    )
    ua = fa.filter(pl.len().over(shared) == 1)
    ub = fb.filter(pl.len().over(shared) == 1)
    links = ua.join(ub, on=shared, how="inner", suffix="_b")
    ta = truth_a.rename({"true_person": "ta"})
    tb = truth_b.rename({"person_id": "person_id_b", "true_person": "tb"})
    scored = links.join(ta, on="person_id").join(tb, on="person_id_b")
    correct = scored.filter(pl.col("ta") == pl.col("tb")).height
    return Rate("two projects' shared columns", fb.height, links.height, correct)


def family_attack(
    extract: Released,
    county: County,
    truth: pl.DataFrame,
    generalise: Generalise,
) -> Rate:
    """(d) A neighbour knows a household's area and its members' ages and sexes, and (worst
    case) which members are in the extract; families are matched on that make-up."""
    demo = [q for q in ("age", "sex", "lsoa") if q in extract.data.columns]
    rows = extract.data.filter(pl.col("family_id").is_not_null())

    def signature(frame: pl.DataFrame, group: str) -> pl.DataFrame:
        row = pl.concat_str([pl.col(q) for q in demo], separator="|")
        return (
            frame.with_columns(row.alias("_row"))
            .group_by(group)
            .agg(pl.col("_row").sort().str.join(";").alias("sig"), pl.len().alias("members"))
        )

    released = signature(rows, "family_id").filter(pl.col("members") >= 2)
    # The intruder's households: the true members present in the extract, generalised.
    present = (
        extract.data.select("person_id", "family_id")
        .join(truth, on="person_id")
        .join(county.register, on="true_person")
    )
    known = present.with_columns(
        generalise(q, present[q], extract.levels[q]).alias(q) for q in demo
    )
    households = signature(known, "true_family").filter(pl.col("members") >= 2)
    matches = households.join(released, on="sig", how="inner").select(
        pl.col("true_family").alias("target"), "family_id"
    )
    # Which true family each released family is: the most common among its members.
    fam_truth = (
        present.group_by("family_id", "true_family")
        .len()
        .sort("len", descending=True)
        .unique("family_id", keep="first")
        .select("family_id", pl.col("true_family").alias("true_person"))
    )
    per_target = matches.group_by("target").len()
    unique = matches.join(per_target.filter(pl.col("len") == 1), on="target", how="semi")
    correct = unique.join(fam_truth, on="family_id").filter(
        pl.col("true_person") == pl.col("target")
    )
    return Rate("family make-up", households.height, unique.height, correct.height)


def sample(frame: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return frame[rng.choice(frame.height, size=min(n, frame.height), replace=False)]


def climb(h: object, values: pl.Series, frm: int, to: int) -> pl.Series:
    """Values released at level `frm` of hierarchy `h`, re-expressed at the coarser level `to`."""
    table = h.table  # type: ignore[attr-defined]
    pairs = table.select(pl.col(f"l{frm}").alias("a"), pl.col(f"l{to}").alias("b")).unique("a")
    return values.cast(pl.String).replace_strict(pairs["a"], pairs["b"], default=None)
