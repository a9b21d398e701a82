"""Link: accepted source records into persons and persons into families.

Persons
    1. Deterministic: records that share a valid strong identifier (NHS
       number, NI number, UPN, or the social care system's own person id)
       are the same person. Invalid identifiers were already blanked at ingest,
       so a mistyped number never joins two people.
    2. Probabilistic: Splink 5 on DuckDB (the same settings run on Spark)
       scores record pairs on forename and surname (exact with term-frequency
       adjustment, swapped with each other, Jaro-Winkler bands), date of birth
       (exact, day/month transposed, one edit, within a year), one address
       comparison (same address, nearly the same, same postcode: line, town and
       postcode describe one fact, so they are not scored as independent
       evidence) and sex. u is estimated by random sampling, m by EM on two
       blocking passes.
    3. The match threshold comes from the model, not from ground truth: the lowest
       threshold at which the model's own expected precision of the accepted links
       meets TARGET_PRECISION (`choose_threshold`); the model's expected precision
       and recall are saved with the run. Persons are the connected components of
       both kinds of link. See docs/linkage.md.

Objections (the register is matched to persons, never linked into them)
    An objection row takes no part in forming persons: a bad row must not join two
    people. Each row is matched on every usable identifier it carries: a strong
    identifier shared with a person's records (NHS number, traced or carried, NI
    number, UPN, social care person number), and the linkage model's links at
    `MATCH_THRESHOLD` from its name, date of birth and postcode to a person's records.
    The persons found are its match: one (matched), none (unmatched) or several
    (ambiguous). The run reports every row and refuses to publish while any is
    unmatched or ambiguous, unless acknowledged (see pipelines/objections.py).

Families (the rule, documented in docs/linkage.md)
    Two persons are in the same family when any of these holds:
    - they were recorded at the same address (first line + postcode) in
      records dated within three years (1,095 days) of each other;
    - they share an Early Help family reference or episode;
    - they share a surname and a postcode in records within three years of each other,
      and the surname was recorded at no more than one address in that postcode (two
      households of one surname in a street are two families, and a record without an
      address cannot say which of them it belongs to);
    - one is a looked-after mother in the SSDA903 (MOTHER, MC_DOB) and the other the
      one person born on MC_DOB recorded at her postcode or under her surname;
    - school contacts (`contact_edges`): a pupil's parent/carer contact who lives with
      the pupil (recorded at an address the pupil was recorded at) names a person with
      the contact's surname and initial recorded at the contact's address, or the one
      such person at the contact's postcode, within three years; and two pupils whose
      contacts living with them share a telephone number and a surname. A contact
      living elsewhere (a separated parent, a grandparent) is never used: Supporting
      Families counts households.
    Families are the connected components of these links; a person with no
    such evidence is a family of one. `family_edges_by_rule` gives each rule's links,
    which is how docs/linkage.md measures what each contributes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipelines.contracts import CONTRACTS, get_contract
from pipelines.engine import EngineConfig, apply_model, open_backend, spark_components
from pipelines.identifiers import is_valid_nhs_number
from pipelines.ingest import IngestResult, SourceFileError

STRONG_IDS = ("nhs_number", "ni_number", "upn", "lcs_person_id")
OBJECTIONS = "objections"
MODEL_ROUTE = "name_and_date_of_birth"  # an objection matched through the linkage model
LINK_COLUMNS = (
    "forename", "surname", "dob", "sex", "postcode", "address_line1",
    "nhs_number", "ni_number", "upn", "lcs_person_id", "ehm_family_ref", "episode_id",
    # SSDA903 Header: a looked-after young woman's first child's date of birth (families).
    "mc_dob",
)  # fmt: skip
# Sources whose address columns are optional in their contract (the school's pupil address,
# the addresses added for families: pipelines/contracts.py), by column: these form families
# only and are never scored for persons (see `link`).
FAMILY_ONLY_ADDRESS: dict[str, tuple[str, ...]] = {
    col: tuple(
        name
        for name, contract in CONTRACTS.items()
        if col in {c.name for c in contract.optional_columns}
    )
    for col in ("address_line1", "postcode")
}


def without_family_only_address(records: pl.DataFrame) -> pl.DataFrame:
    """`records` with the FAMILY_ONLY_ADDRESS columns blanked on those sources' rows."""
    return records.with_columns(
        pl.when(pl.col("source").is_in(list(sources))).then(None).otherwise(pl.col(c)).alias(c)
        for c, sources in FAMILY_ONLY_ADDRESS.items()
    )


# A household stays at an address for years: records at one address within three years
# of each other are one family (measured at 20,000 people: family recall 0.782 -> 0.801,
# precision 0.941 either way; ten years adds recall at some cost in precision).
SAME_ADDRESS_DAYS = 1095
# A surname and postcode, where the surname has one address in the postcode: three years
# as for an address (measured at 20,000 people with school contacts: recall 0.883 with one
# year and a child required, 0.900 with three years and any age; precision 0.986, 0.984).
# The whole five-year window would add 0.006 of recall here, but the synthetic county
# never re-lets an address, so what longer windows cost in precision cannot be measured.
SAME_SURNAME_POSTCODE_DAYS = 1095


@dataclass(frozen=True)
class LinkageModel:
    """What is saved with every run so the linkage can be reproduced and audited."""

    settings: dict[str, Any]
    threshold: float
    training: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "threshold": self.threshold,
                "settings": self.settings,
                "training": self.training,
                "counts": self.counts,
            },
            indent=2,
            sort_keys=True,
            default=str,
        )


OBJECTION_MATCH_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "person_keys": pl.List(pl.Int64),
    "matched_on": pl.List(pl.String),
}


@dataclass(frozen=True)
class Linked:
    records: pl.DataFrame  # unique_id, source, record_id, person_key, family_key, link columns
    model: LinkageModel
    timings: dict[str, float]
    # One row per merge decision the threshold made (uid_l, uid_r, match_probability,
    # match_weight): zone A, what clerical review samples (pipelines/clerical.py).
    decisions: pl.DataFrame | None = None
    # One row per accepted objection row: record_id, person_keys (the persons it matched,
    # sorted), matched_on (the routes that found them).
    objections: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=OBJECTION_MATCH_SCHEMA)
    )


def person_records(results: dict[str, IngestResult]) -> pl.DataFrame:
    """One row per accepted record with the identifying columns every source may carry."""
    frames = []
    for name, r in results.items():
        df = r.accepted
        event = get_contract(name).event_date
        cols = [
            pl.concat_str(pl.lit(name), pl.lit(":"), pl.col("record_id")).alias("unique_id"),
            pl.col("source"),
            pl.col("record_id"),
        ]
        for c in LINK_COLUMNS:
            if c in df.columns:
                cols.append(pl.col(c).cast(pl.Date if c == "dob" else pl.Utf8).alias(c))
            else:
                cols.append(pl.lit(None, dtype=pl.Date if c == "dob" else pl.Utf8).alias(c))
        if event is not None:
            cols.append(pl.col(event).alias("event_date"))
        elif name == "school_census":
            # Spring census day of the academic year.
            cols.append(
                pl.date(pl.col("academic_year").str.slice(0, 4).cast(pl.Int32) + 1, 1, 15).alias(
                    "event_date"
                )
            )
        elif name == "early_years":
            cols.append(
                pl.date(pl.col("term").str.slice(0, 4).cast(pl.Int32), 1, 15).alias("event_date")
            )
        elif name == "neet":
            cols.append(
                (pl.col("status_month") + "-01").str.to_date("%Y-%m-%d").alias("event_date")
            )
        else:
            cols.append(pl.lit(None, pl.Date).alias("event_date"))
        frames.append(df.select(cols))
    return pl.concat(frames, how="vertical").sort("unique_id")


# ------------------------------------------------------------- persons ---


def deterministic_edges(records: pl.DataFrame) -> pl.DataFrame:
    """Chain every record sharing a strong identifier to the first record that carries it."""
    edges = []
    for c in STRONG_IDS:
        sub = records.select("unique_id", c).drop_nulls()
        if sub.height == 0:
            continue
        first = sub.group_by(c).agg(pl.col("unique_id").min().alias("uid_r"))
        edges.append(
            sub.join(first, on=c)
            .filter(pl.col("unique_id") != pl.col("uid_r"))
            .select(pl.col("unique_id").alias("uid_l"), "uid_r")
        )
    if not edges:
        return pl.DataFrame(schema={"uid_l": pl.Utf8, "uid_r": pl.Utf8})
    return pl.concat(edges).unique()


# The columns probabilistic linkage reads. Required: unique_id, forename, surname and at
# least one of dob or postcode per record. Optional (used when the frame has them):
# sex, address_line1, town. dob is a date; everything else is text.
REQUIRED_COLUMNS = ("unique_id", "forename", "surname", "dob", "postcode")
OPTIONAL_COLUMNS = ("sex", "address_line1", "town")
# The policy target for choosing the threshold: the model's own estimate of the share of
# accepted links that are true (pairwise precision) must be at least this.
TARGET_PRECISION = 0.998
# Pairs scored below this are not kept at all; they still count towards the model's
# estimate of how many true pairs exist (estimated recall).
PREDICT_FLOOR = 0.01
# EM on the date-of-birth block trains on at most about this many pairs (Splink samples
# records by a hash on each side, so the sample is the same every run). The block grows
# as the square of the county: 29.5 million pairs at 300,000 people, about 296 million
# at 1 million, which the 2 GB cap cannot hold. Ten million pairs are plenty to
# estimate a handful of m probabilities; below the cap nothing is sampled.
EM_MAX_PAIRS = 1e7


def _portable_level(sql_condition: str, label: str) -> Any:
    """A custom level written once, in DuckDB's SQL, that runs on every Splink backend.

    Splink passes a custom level's SQL through unchanged, so on Spark `"forename_l"` would
    be a string literal (every comparison false, silently) and DuckDB's function names
    would not resolve. The condition is written with `{jaro_winkler}`, `{levenshtein}`
    and `{damerau_levenshtein}` for the backend's function names, and translated from DuckDB's SQL
    for any other backend. On DuckDB the SQL is exactly as written."""
    import splink.comparison_level_library as cll

    class _Level(cll.CustomLevel):
        def create_sql(self, sql_dialect: Any) -> str:
            sql = self.sql_condition.format(
                jaro_winkler=sql_dialect.jaro_winkler_function_name,
                levenshtein=sql_dialect.levenshtein_function_name,
                damerau_levenshtein=sql_dialect.damerau_levenshtein_function_name,
            )
            if sql_dialect.sql_dialect_str == "duckdb":
                return str(sql)
            import sqlglot

            return str(sqlglot.transpile(sql, read="duckdb", write=sql_dialect.sqlglot_dialect)[0])

        def create_label_for_charts(self) -> str:
            return str(self.label_for_charts)

    return _Level(sql_condition, label)


# Splink's DamerauLevenshteinLevel("dob", 1), computed only where it can be true. DuckDB's
# damerau_levenshtein is the costliest step of scoring (measured at 300,000 people: 18 of
# the 48 CPU seconds of predict, called on the 6 million pairs with different dates).
# One edit (a substitution, an adjacent transposition, an insertion or a deletion)
# touches at most two neighbouring characters, so when both strings have 9 characters or
# more it leaves their first four or their last four alike (at 8, swapping the 4th and
# 5th touches both). The guard skips the call for every other pair, so the level is true
# for exactly the same pairs, whatever the strings (tests/test_link.py checks it against
# damerau_levenshtein itself). Same label, so saved models still apply.
DOB_ONE_EDIT = (
    'CASE WHEN length("dob_l") < 9 OR length("dob_r") < 9 '
    'OR left("dob_l", 4) = left("dob_r", 4) OR right("dob_l", 4) = right("dob_r", 4) '
    'THEN {damerau_levenshtein}("dob_l", "dob_r") <= 1 ELSE false END'
)


def _name_comparison(col: str, other: str) -> Any:
    """Exact (with term-frequency adjustment, so a rare name counts for more), the other
    name field (forename and surname swapped), then two Jaro-Winkler bands."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name=col,
        comparison_levels=[
            cll.NullLevel(col),
            cll.ExactMatchLevel(col).configure(tf_adjustment_column=col),
            _portable_level(f'"{col}_l" = "{other}_r"', f"{col} matches {other} (swapped)"),
            cll.JaroWinklerLevel(col, 0.92),
            cll.JaroWinklerLevel(col, 0.80),
            cll.ElseLevel(),
        ],
    )


def _address_comparison(columns: set[str]) -> Any:
    """One comparison for where someone lives. Address line, town and postcode describe one
    fact, so scoring them as independent comparisons would count a shared address two or
    three times (the over-confidence the Splink documentation warns about)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    if "address_line1" not in columns:
        return cl.CustomComparison(
            output_column_name="postcode",
            comparison_levels=[
                cll.NullLevel("postcode"),
                cll.ExactMatchLevel("postcode"),
                cll.LevenshteinLevel("postcode", 1),
                cll.ElseLevel(),
            ],
        )
    near_place = '{levenshtein}("postcode_l", "postcode_r") <= 1'
    if "town" in columns:
        near_place = f'({near_place} OR "town_l" = "town_r")'
    return cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            _portable_level(
                '("postcode_l" IS NULL OR "postcode_r" IS NULL) AND '
                '("address_line1_l" IS NULL OR "address_line1_r" IS NULL)',
                '("postcode_l" IS NULL OR "postcode_r" IS NULL) AND '
                '("address_line1_l" IS NULL OR "address_line1_r" IS NULL)',
            ).configure(is_null_level=True),
            _portable_level(
                '"address_line1_l" = "address_line1_r" AND "postcode_l" = "postcode_r"',
                "same address",
            ),
            _portable_level(
                f'{{jaro_winkler}}("address_line1_l", "address_line1_r") >= 0.9 AND {near_place}',
                "nearly the same address",
            ),
            _portable_level('"postcode_l" = "postcode_r"', "same postcode"),
            cll.ElseLevel(),
        ],
    )


def splink_settings(columns: set[str] | None = None) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    cols = set(columns or {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS})
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            _portable_level('"dob_l" = "dob_swapped_r"', "day and month transposed"),
            _portable_level(DOB_ONE_EDIT, "Damerau-Levenshtein distance of dob <= 1"),
            _portable_level(
                'substr("dob_l", 6, 5) = substr("dob_r", 6, 5) AND '
                'abs(cast(substr("dob_l", 1, 4) as integer) - '
                'cast(substr("dob_r", 1, 4) as integer)) = 1',
                "year one apart, same day and month",
            ),
            # Fixed, not trained: a household holds people who share a surname and an
            # address, and now and then a forename (a parent and the child named after
            # them), but not a date of birth. Name and address evidence is not
            # independent within a household, so EM (blocked on names) would take such
            # pairs for one person recorded with a wrong date. For one person, dates
            # that disagree beyond a keystroke, a transposition or a year are a double
            # error: treated as near-conclusive evidence against a match.
            cll.ElseLevel().configure(m_probability=1e-6, fix_m_probability=True),
        ],
    )
    comparisons = [
        _name_comparison("forename", "surname"),
        _name_comparison("surname", "forename"),
        dob,
        _address_comparison(cols),
    ]
    if "sex" in cols:
        comparisons.append(cl.ExactMatch("sex"))
    rules: list[Any] = [
        block_on("dob", "substr(surname, 1, 1)"),
        block_on("dob", "substr(forename, 1, 1)"),
        block_on("forename", "surname"),
        block_on("surname", "postcode"),
        block_on("forename", "postcode"),
    ]
    if "address_line1" in cols:
        rules.append(block_on("address_line1", "postcode"))
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1e-5,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def _quiet_splink() -> None:
    """Splink logs every training step, and warns about untrained rare levels (which keep
    their defaults); the run reports its own summary and saves the model for audit."""
    import logging

    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class ThresholdChoice:
    """The match threshold chosen from the model's own probabilities, with what the model
    expects at that threshold (no ground truth is used)."""

    threshold: float
    target_precision: float
    estimated_precision: float  # mean match probability of the accepted pairs
    estimated_recall: float  # their expected true pairs over all scored pairs' expected ones
    accepted_pairs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "target_precision": self.target_precision,
            "estimated_precision": round(self.estimated_precision, 6),
            "estimated_recall": round(self.estimated_recall, 6),
            "accepted_pairs": self.accepted_pairs,
        }


LOWEST_THRESHOLD = 0.9  # no link on less than 90% probability, whatever the estimate


def choose_threshold(
    probabilities: pl.Series,
    *,
    target_precision: float = TARGET_PRECISION,
    lowest: float = LOWEST_THRESHOLD,
    highest: float = 0.9999,
) -> ThresholdChoice:
    """The lowest threshold whose accepted pairs the model itself expects to be at least
    `target_precision` true: a pair with match probability p is a true match with
    probability p, so the expected precision above t is the mean of p over pairs >= t.

    Expected recall is the expected true pairs accepted over the expected true pairs among
    all scored pairs (pairs never scored, outside every blocking rule, are not counted:
    the estimate is an upper bound). Clamped to [lowest, highest]: the model's own
    probabilities are over-confident where its evidence is not independent (people in
    one household share a surname and an address), so a floor stops the mean criterion
    reaching far down into pairs the model itself gives only even odds.

    Pass one probability per *decision*: where deterministic links have already joined
    records, the pairs inside one group are not decisions (`merge_decisions`)."""
    if not 0.5 <= target_precision < 1:
        raise ValueError(f"target_precision must be in [0.5, 1), got {target_precision}")
    p = np.sort(probabilities.drop_nulls().to_numpy())[::-1]
    total = float(p.sum())
    if p.size == 0:
        return ThresholdChoice(highest, target_precision, 1.0, 0.0, 0)
    # A threshold accepts every pair at or above it, ties included: evaluate the mean at
    # the end of each run of equal probabilities.
    values, counts = np.unique(p, return_counts=True)
    values, counts = values[::-1], counts[::-1]
    mean_above = np.cumsum(values * counts) / np.cumsum(counts)
    ok = np.nonzero(mean_above >= target_precision)[0]
    t = float(values[ok[-1]]) if ok.size else highest
    t = min(max(t, lowest), highest)
    accepted = p[p >= t]
    est_p = float(accepted.mean()) if accepted.size else 1.0
    est_r = float(accepted.sum() / total) if total else 0.0
    return ThresholdChoice(t, target_precision, est_p, est_r, int(accepted.size))


@dataclass(frozen=True)
class ScoredPairs:
    """Every candidate pair Splink scored (down to PREDICT_FLOOR), the saved model and the
    training summary: what the threshold choice and clerical review work from."""

    pairs: pl.DataFrame  # uid_l, uid_r, match_probability, match_weight
    model: dict[str, Any]
    training: dict[str, Any]


def score_pairs(
    records: pl.DataFrame,
    *,
    max_pairs: float = 2e6,
    seed: int = 1,
    memory_limit: str = "2GB",
    threads: int = 2,
    engine: EngineConfig | None = None,
    trained: dict[str, Any] | None = None,
) -> ScoredPairs:
    """Splink (on DuckDB unless `engine` says Spark): train on the records (u by random
    sampling, m by EM on two blocking passes) and score every candidate pair. With
    `trained` (a model saved by an earlier run, on either backend) the model is applied
    as it is, without training. `records` needs REQUIRED_COLUMNS and may carry
    OPTIONAL_COLUMNS; records with no name, or with neither a date of birth nor a
    postcode, are left out (they cannot be scored)."""
    from splink import Linker, block_on

    missing = [c for c in REQUIRED_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(
            f"probabilistic linkage needs column(s) {missing}; required: "
            f"{', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}"
        )
    _quiet_splink()
    present = {c for c in OPTIONAL_COLUMNS if c in records.columns}
    named = (
        records.filter(
            (pl.col("forename").is_not_null() | pl.col("surname").is_not_null())
            & (pl.col("dob").is_not_null() | pl.col("postcode").is_not_null())
        )
        .select(
            "unique_id",
            "forename",
            "surname",
            pl.col("dob").dt.strftime("%Y-%m-%d").alias("dob"),
            pl.col("dob").dt.strftime("%Y-%d-%m").alias("dob_swapped"),
            "postcode",
            *sorted(present),
        )
        .sort("unique_id")
    )
    config = engine or EngineConfig(memory_limit=memory_limit, threads=threads)
    with open_backend(config) as backend:
        settings = splink_settings(set(named.columns))
        if trained is not None:
            dialect = backend.api.sql_dialect.sql_dialect_str
            settings = apply_model(settings.get_settings(dialect).as_dict(), trained)
        training: dict[str, Any] = {
            "records": named.height,
            "max_pairs_u": max_pairs,
            "engine": config.name,
        }
        if trained is None:
            # Trained on the records' own ids: Splink samples records for u and for EM by
            # a hash of the id, so the model depends on them.
            linker = Linker(backend.register(named), settings)
            linker.training.estimate_probability_two_random_records_match(
                [block_on("forename", "surname", "dob")], recall=0.7
            )
            linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on("dob"), estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS
            )
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on("forename", "surname"), estimate_without_term_frequencies=True
            )
            settings = linker.misc.save_model_to_json()
        else:
            training["model"] = "applied from a saved model"
        # Scored with each id replaced by its rank: joining and comparing the candidate
        # pairs on integers instead of text took 14% less CPU in predict at 300,000 people.
        # Ranks keep the ids' order, so each pair is oriented (uid_l < uid_r) and scored
        # exactly as it would be under the text ids.
        ranked = named.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("unique_id"))
        scorer = Linker(backend.register(ranked), settings)
        pred = scorer.inference.predict(threshold_match_probability=PREDICT_FLOOR)
        scored = backend.to_polars(
            pred, ["unique_id_l", "unique_id_r", "match_probability", "match_weight"]
        )
        model = settings if trained is None else scorer.misc.save_model_to_json()
    ids = named["unique_id"]
    scored = scored.select(
        ids.gather(scored["unique_id_l"]).alias("uid_l"),
        ids.gather(scored["unique_id_r"]).alias("uid_r"),
        "match_probability",
        "match_weight",
    )
    training["pairs_scored"] = scored.height
    return ScoredPairs(scored, model, training)


def merge_decisions(pairs: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """One row per pair of groups (deterministic components) that some scored pair would
    join, with its best-scoring record pair: the decisions a threshold makes. A person
    with many records contributes thousands of easy within-person pairs, which would
    otherwise swamp the few decisions that matter. `groups`: uid, group.

    Returns a, b (the groups), uid_l, uid_r, match_probability, match_weight."""
    g = groups.select(pl.col("uid"), pl.col("group"))
    d = (
        pairs.join(g.rename({"uid": "uid_l", "group": "g_l"}), on="uid_l")
        .join(g.rename({"uid": "uid_r", "group": "g_r"}), on="uid_r")
        .filter(pl.col("g_l") != pl.col("g_r"))
        .with_columns(
            pl.min_horizontal("g_l", "g_r").alias("a"), pl.max_horizontal("g_l", "g_r").alias("b")
        )
    )
    return (
        d.sort("match_probability", "uid_l", "uid_r", descending=[True, False, False])
        .group_by("a", "b", maintain_order=True)
        .first()
        .select("a", "b", "uid_l", "uid_r", "match_probability", "match_weight")
        .sort("a", "b")
    )


def threshold_at(
    probabilities: pl.Series, threshold: float, target_precision: float = TARGET_PRECISION
) -> ThresholdChoice:
    """The model's estimates at a fixed threshold (a council may set one)."""
    p = probabilities.drop_nulls().to_numpy()
    above = p[p >= threshold]
    total = float(p.sum())
    return ThresholdChoice(
        threshold,
        target_precision,
        float(above.mean()) if above.size else 1.0,
        float(above.sum() / total) if total else 0.0,
        int(above.size),
    )


def probabilistic_edges(
    records: pl.DataFrame,
    *,
    threshold: float | None = None,
    target_precision: float = TARGET_PRECISION,
    max_pairs: float = 2e6,
    seed: int = 1,
    memory_limit: str = "2GB",
    threads: int = 2,
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, Any]]:
    """Score pairs (`score_pairs`) and keep the links at the threshold: chosen from the
    model (`choose_threshold`, no ground truth needed) unless `threshold` is given.

    Callable on any frame with REQUIRED_COLUMNS (and any OPTIONAL_COLUMNS). Returns
    (edges uid_l, uid_r, match_probability, match_weight; the saved model; the training
    summary, with the threshold and the model's own precision and recall estimates)."""
    scored = score_pairs(
        records, max_pairs=max_pairs, seed=seed, memory_limit=memory_limit, threads=threads
    )
    probs = scored.pairs["match_probability"]
    choice = (
        choose_threshold(probs, target_precision=target_precision)
        if threshold is None
        else threshold_at(probs, threshold, target_precision)
    )
    edges = scored.pairs.filter(pl.col("match_probability") >= choice.threshold)
    training = dict(scored.training, threshold=choice.to_dict(), pairs_at_threshold=edges.height)
    return edges, scored.model, training


def components(
    ids: pl.Series, edges: pl.DataFrame, engine: EngineConfig | None = None
) -> pl.Series:
    """Connected components of `edges` over `ids`; labels are 0..k-1 in first-seen order.

    On the driver (scipy) unless the engine is Spark and the graph has at least the
    engine's `spark_components_from` nodes: Spark's iterative clustering costs minutes
    in local mode for graphs scipy does in milliseconds, so it is kept for graphs the
    driver cannot hold. Both give the same labels."""
    if engine is not None and engine.name == "spark" and len(ids) >= engine.spark_components_from:
        return spark_components(ids, edges, engine)
    index = pl.DataFrame({"uid": ids, "i": np.arange(len(ids), dtype=np.int64)})
    e = (
        edges.join(index.rename({"uid": "uid_l", "i": "a"}), on="uid_l")
        .join(index.rename({"uid": "uid_r", "i": "b"}), on="uid_r")
        .select("a", "b")
    )
    n = len(ids)
    graph = coo_matrix(
        (np.ones(e.height, dtype=np.int8), (e["a"].to_numpy(), e["b"].to_numpy())), shape=(n, n)
    )
    _, labels = connected_components(graph, directed=False)
    # Relabel in order of first appearance so labels are stable for a given input order.
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return pl.Series("component", remap[labels])


# ---------------------------------------------------------- objections ---


def match_objections(
    objections: pl.DataFrame, records: pl.DataFrame, model_edges: pl.DataFrame
) -> pl.DataFrame:
    """Each objection row's persons, found on every identifier it carries.

    objections: objection rows as `person_records` builds them (unique_id, record_id and
    the identifier columns); records: every other record with its `person_key`;
    model_edges: the linkage model's links (uid_l, uid_r) at the match threshold."""
    found = []
    for c in STRONG_IDS:
        value = pl.col(c).str.to_uppercase() if c == "lcs_person_id" else pl.col(c)
        obj = objections.select("unique_id", value.alias("_id")).drop_nulls()
        known = records.select(value.alias("_id"), "person_key").drop_nulls().unique()
        found.append(
            obj.join(known, on="_id").select(
                "unique_id", pl.col("person_key").cast(pl.Int64), pl.lit(c).alias("route")
            )
        )
    obj_ids = objections["unique_id"].implode()
    pairs = pl.concat(
        [
            model_edges.filter(
                pl.col("uid_l").is_in(obj_ids) & ~pl.col("uid_r").is_in(obj_ids)
            ).select(pl.col("uid_l").alias("unique_id"), pl.col("uid_r").alias("other")),
            model_edges.filter(
                pl.col("uid_r").is_in(obj_ids) & ~pl.col("uid_l").is_in(obj_ids)
            ).select(pl.col("uid_r").alias("unique_id"), pl.col("uid_l").alias("other")),
        ]
    )
    found.append(
        pairs.join(
            records.select(pl.col("unique_id").alias("other"), "person_key"), on="other"
        ).select(
            "unique_id", pl.col("person_key").cast(pl.Int64), pl.lit(MODEL_ROUTE).alias("route")
        )
    )
    hits = (
        pl.concat(found)
        .group_by("unique_id")
        .agg(
            pl.col("person_key").unique().sort().alias("person_keys"),
            pl.col("route").unique().sort().alias("matched_on"),
        )
    )
    return (
        objections.select("unique_id", "record_id")
        .join(hits, on="unique_id", how="left")
        .select(
            "record_id",
            pl.col("person_keys").fill_null(pl.lit([], pl.List(pl.Int64))),
            pl.col("matched_on").fill_null(pl.lit([], pl.List(pl.Utf8))),
        )
        .sort("record_id")
    )


# ------------------------------------------------------------ families ---


SCHOOL = "school_census"
CONTACT_COLUMNS = ("forename", "surname", "relationship", "address_line1", "postcode", "phone")
CONTACT_SCHEMA: dict[str, pl.DataType] = {
    "unique_id": pl.Utf8(),
    "contact": pl.Int64(),
    **{c: pl.Utf8() for c in CONTACT_COLUMNS},
    "lives_with_pupil": pl.Boolean(),
}


EARLY_YEARS = "early_years"
CLAIMANT_COLUMNS = ("claimant_forename", "claimant_surname", "claimant_dob", "claimant_ni_number")
CLAIMANT_SCHEMA: dict[str, pl.DataType] = {
    "unique_id": pl.Utf8(),
    "claimant_forename": pl.Utf8(),
    "claimant_surname": pl.Utf8(),
    "claimant_dob": pl.Date(),
    "claimant_ni_number": pl.Utf8(),
}


def _address_key(line: pl.Expr, postcode: pl.Expr) -> pl.Expr:
    """First line and postcode as one comparable value (case and spacing ignored)."""
    return pl.concat_str(
        line.str.to_uppercase().str.replace_all(r"\s+", " ").str.strip_chars(),
        pl.lit("|"),
        postcode,
    )


def school_contacts(results: dict[str, IngestResult]) -> pl.DataFrame:
    """One row per parent/carer contact on a school census record: the pupil's record
    (unique_id), the contact's priority, CONTACT_COLUMNS, and whether the contact lives
    with the pupil (recorded at the pupil's address on that row: first line and postcode,
    or the postcode alone where either first line is blank). Empty when the school
    extract carries no contacts."""
    r = results.get(SCHOOL)
    if r is None:
        return pl.DataFrame(schema=CONTACT_SCHEMA)
    df = r.accepted
    frames = []
    for k in (1, 2):
        cols = [f"contact{k}_{c}" for c in CONTACT_COLUMNS]
        if not set(cols) <= set(df.columns):
            continue
        pupil_line = df["address_line1"] if "address_line1" in df.columns else None
        sub = df.select(
            pl.concat_str(pl.lit(SCHOOL), pl.lit(":"), pl.col("record_id")).alias("unique_id"),
            pl.lit(k, pl.Int64).alias("contact"),
            *[pl.col(f"contact{k}_{c}").cast(pl.Utf8).alias(c) for c in CONTACT_COLUMNS],
            pl.col("postcode").alias("_pupil_postcode"),
            (pl.col("address_line1") if pupil_line is not None else pl.lit(None, pl.Utf8)).alias(
                "_pupil_line"
            ),
        ).filter(pl.col("surname").is_not_null() & pl.col("forename").is_not_null())
        same_postcode = pl.col("postcode") == pl.col("_pupil_postcode")
        either_line_blank = pl.col("address_line1").is_null() | pl.col("_pupil_line").is_null()
        same_address = _address_key(pl.col("address_line1"), pl.col("postcode")) == _address_key(
            pl.col("_pupil_line"), pl.col("_pupil_postcode")
        )
        frames.append(
            sub.with_columns(
                (same_address | (either_line_blank & same_postcode))
                .fill_null(False)
                .alias("lives_with_pupil")
            ).select(list(CONTACT_SCHEMA))
        )
    if not frames:
        return pl.DataFrame(schema=CONTACT_SCHEMA)
    return pl.concat(frames)


def early_years_claimants(results: dict[str, IngestResult]) -> pl.DataFrame:
    """One row per early-years record naming the parent or carer who claims: the child's
    record (unique_id) and CLAIMANT_COLUMNS. Empty when the extract carries none."""
    r = results.get(EARLY_YEARS)
    if r is None or not set(CLAIMANT_COLUMNS) <= set(r.accepted.columns):
        return pl.DataFrame(schema=CLAIMANT_SCHEMA)
    return (
        r.accepted.select(
            pl.concat_str(pl.lit(EARLY_YEARS), pl.lit(":"), pl.col("record_id")).alias("unique_id"),
            *[pl.col(c).cast(CLAIMANT_SCHEMA[c]) for c in CLAIMANT_COLUMNS],
        )
        .filter(
            pl.col("claimant_ni_number").is_not_null()
            | pl.all_horizontal(
                pl.col(c).is_not_null()
                for c in ("claimant_forename", "claimant_surname", "claimant_dob")
            )
        )
        .select(list(CLAIMANT_SCHEMA))
    )


def family_edges(
    records: pl.DataFrame,
    contacts: pl.DataFrame | None = None,
    claimants: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Person-to-person links under the family rule (see module docstring)."""
    return pl.concat(list(family_edges_by_rule(records, contacts, claimants).values())).unique()


def family_edges_by_rule(
    records: pl.DataFrame,
    contacts: pl.DataFrame | None = None,
    claimants: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """The family links each rule makes (a, b person keys), by rule name."""
    r = records.select(
        "person_key",
        "event_date",
        "dob",
        "surname",
        "postcode",
        pl.concat_str(
            pl.col("address_line1").str.to_uppercase().str.replace_all(r"\s+", " "),
            pl.lit("|"),
            "postcode",
        ).alias("address"),
        pl.col("address_line1")
        .str.to_uppercase()
        .str.replace_all(r"\s+", " ")
        .alias("address_line"),
        "ehm_family_ref",
        "episode_id",
    )
    edges: dict[str, pl.DataFrame] = {}

    def pairs_within(
        key: list[str], days: int, extra: pl.Expr | None = None, carry: list[str] | None = None
    ) -> pl.DataFrame:
        sub = (
            r.select("person_key", "event_date", "dob", *key, *(carry or []))
            .drop_nulls(key + ["event_date"])
            .unique()
        )
        # Link persons recorded under the same key within the time window.
        j = sub.join(sub, on=key, suffix="_r").filter(
            (pl.col("person_key") < pl.col("person_key_r"))
            & ((pl.col("event_date") - pl.col("event_date_r")).dt.total_days().abs() <= days)
        )
        if extra is not None:
            j = j.filter(extra)
        return j.select(pl.col("person_key").alias("a"), pl.col("person_key_r").alias("b")).unique()

    edges["same_address"] = pairs_within(["address"], SAME_ADDRESS_DAYS)
    # A surname and a postcode (one of about thirteen households) say "one household" only
    # when the surname was recorded at no more than one address in the postcode: two Smith
    # households in a street, and a Smith with no address recorded cannot say which is hers
    # (measured at 20,000 people: the rule's links right 95.6% of the time without this
    # condition, 99.4% with it).
    r = r.with_columns(
        pl.col("address_line")
        .drop_nulls()
        .n_unique()
        .over("surname", "postcode")
        .alias("addresses_here")
    )
    edges["surname_and_postcode"] = pairs_within(
        ["surname", "postcode"],
        SAME_SURNAME_POSTCODE_DAYS,
        pl.col("addresses_here") <= 1,
        carry=["addresses_here"],
    )
    for ref in ("ehm_family_ref", "episode_id"):
        sub = r.select("person_key", ref).drop_nulls().unique()
        first = sub.group_by(ref).agg(pl.col("person_key").min().alias("b"))
        edges[ref] = (
            sub.join(first, on=ref)
            .select(pl.col("person_key").alias("a"), "b")
            .filter(pl.col("a") != pl.col("b"))
        )
    edges["ssda903_mother"] = mother_child_edges(records)
    if contacts is not None and not contacts.is_empty():
        edges.update(contact_edges(records, contacts))
    if claimants is not None and not claimants.is_empty():
        edges["early_years_claimant"] = claimant_edges(records, claimants)
    return {
        k: v.select(pl.col("a").cast(pl.Int64), pl.col("b").cast(pl.Int64))
        for k, v in edges.items()
    }


def contact_edges(records: pl.DataFrame, contacts: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Family links from the school's parent/carer contacts (see module docstring).

    Only contacts who live with the pupil are used: a parent living elsewhere, or a
    grandparent, is family but another household, and Supporting Families counts
    households."""
    pupil = records.select("unique_id", "person_key", "event_date")
    c = contacts.join(pupil, on="unique_id").with_columns(
        _address_key(pl.col("address_line1"), pl.col("postcode")).alias("address"),
        pl.col("forename").str.slice(0, 1).alias("initial"),
    )
    # A contact lives with the pupil when recorded at the pupil's address on that row, or
    # at any address the pupil was recorded at (a contact not updated since the family
    # moved); a parent living elsewhere never is.
    pupil_addresses = (
        records.select(
            "person_key",
            _address_key(pl.col("address_line1"), pl.col("postcode")).alias("address"),
        )
        .drop_nulls()
        .unique()
        .with_columns(pl.lit(True).alias("_lived_there"))
    )
    c = c.join(pupil_addresses, on=["person_key", "address"], how="left").filter(
        pl.col("lives_with_pupil") | pl.col("_lived_there").fill_null(False)
    )
    people = (
        records.filter(pl.col("surname").is_not_null())
        .select(
            pl.col("person_key").alias("person_key_r"),
            pl.col("event_date").alias("event_date_r"),
            "dob",
            "surname",
            pl.col("forename").str.slice(0, 1).alias("initial"),
            "postcode",
            _address_key(pl.col("address_line1"), pl.col("postcode")).alias("address"),
        )
        .unique()
    )
    within = (
        pl.col("event_date") - pl.col("event_date_r")
    ).dt.total_days().abs() <= SAME_ADDRESS_DAYS
    grown = (pl.col("event_date_r") - pl.col("dob")).dt.total_days() >= 16 * 365.25
    other = pl.col("person_key") != pl.col("person_key_r")
    out: dict[str, pl.DataFrame] = {}
    # The contact is a person recorded under the same surname and initial at the same
    # address: the contact's household is the pupil's.
    at_address = (
        c.drop_nulls(["address", "event_date"])
        .join(people.drop_nulls(["address", "event_date_r"]), on=["surname", "initial", "address"])
        .filter(within & other & grown.fill_null(True))
    )
    out["school_contact_at_address"] = at_address.select(
        pl.col("person_key").alias("a"), pl.col("person_key_r").alias("b")
    ).unique()
    # Or the one such person recorded at the contact's postcode (a source with a postcode
    # but no address): two or more candidates and the contact names nobody for certain.
    at_postcode = (
        c.drop_nulls(["postcode", "event_date"])
        .join(
            people.drop_nulls(["postcode", "event_date_r"]), on=["surname", "initial", "postcode"]
        )
        .filter(within & other & grown.fill_null(True))
        .select("unique_id", "contact", "person_key", "person_key_r")
        .unique()
    )
    one = at_postcode.filter(pl.len().over("unique_id", "contact") == 1)
    out["school_contact_at_postcode"] = one.select(
        pl.col("person_key").alias("a"), pl.col("person_key_r").alias("b")
    ).unique()
    # Two pupils whose contacts living with them share a telephone number and a surname.
    ph = c.drop_nulls(["phone"]).select("person_key", "phone", "surname").unique()
    out["school_contact_phone"] = (
        ph.join(ph, on=["phone", "surname"], suffix="_r")
        .filter(pl.col("person_key") < pl.col("person_key_r"))
        .select(pl.col("person_key").alias("a"), pl.col("person_key_r").alias("b"))
        .unique()
    )
    return out


def claimant_edges(records: pl.DataFrame, claimants: pl.DataFrame) -> pl.DataFrame:
    """A child and the parent or carer who claims the child's early-years funding.

    The entitlement is the household's (the claimant is a parent the child lives with),
    so the claimant is the child's family. The claimant is the person whose records carry
    the claimant's National Insurance number (validated at ingest), or else the one
    person recorded under the claimant's surname, initial and date of birth: two or more
    such persons, and the claim names nobody for certain."""
    child = records.select("unique_id", "person_key")
    c = claimants.join(child, on="unique_id")
    ni = (
        c.drop_nulls("claimant_ni_number")
        .join(
            records.select(pl.col("person_key").alias("person_key_r"), "ni_number")
            .drop_nulls()
            .unique(),
            left_on="claimant_ni_number",
            right_on="ni_number",
        )
        .select("person_key", "person_key_r")
    )
    people = (
        records.drop_nulls(["surname", "forename", "dob"])
        .select(
            pl.col("person_key").alias("person_key_r"),
            "surname",
            pl.col("forename").str.slice(0, 1).alias("initial"),
            "dob",
        )
        .unique()
    )
    named = (
        c.drop_nulls(["claimant_surname", "claimant_forename", "claimant_dob"])
        .select(
            "unique_id",
            "person_key",
            pl.col("claimant_surname").alias("surname"),
            pl.col("claimant_forename").str.slice(0, 1).alias("initial"),
            pl.col("claimant_dob").alias("dob"),
        )
        .join(people, on=["surname", "initial", "dob"])
        .select("unique_id", "person_key", "person_key_r")
        .unique()
        .filter(pl.len().over("unique_id") == 1)
        .select("person_key", "person_key_r")
    )
    return (
        pl.concat([ni, named])
        .filter(pl.col("person_key") != pl.col("person_key_r"))
        .select(pl.col("person_key").alias("a"), pl.col("person_key_r").alias("b"))
        .unique()
    )


def mother_child_edges(records: pl.DataFrame) -> pl.DataFrame:
    """A looked-after mother and her child (SSDA903 Header MOTHER=1 with MC_DOB).

    The child is the one person born on MC_DOB who was ever recorded at a postcode the
    mother was recorded at, or under her surname: a date of birth alone is shared by
    several babies in a county. Two or more such persons: no link (ambiguous)."""
    schema = {"a": records.schema["person_key"], "b": records.schema["person_key"]}
    if "mc_dob" not in records.columns:
        return pl.DataFrame(schema=schema)
    mothers = (
        records.filter(pl.col("mc_dob").is_not_null())
        .select("person_key", pl.col("mc_dob").cast(pl.Utf8).alias("born"))
        .unique()
    )
    if mothers.is_empty():
        return pl.DataFrame(schema=schema)
    traits = pl.concat(
        [
            records.select("person_key", pl.col("postcode").alias("trait")),
            records.select("person_key", pl.col("surname").alias("trait")),
        ]
    ).drop_nulls().unique()  # fmt: skip
    babies = records.select("person_key", pl.col("dob").cast(pl.Utf8).alias("born")).unique()
    cand = (
        mothers.join(babies, on="born", suffix="_child")
        .filter(pl.col("person_key") != pl.col("person_key_child"))
        .join(traits, on="person_key")
        .join(
            traits.rename({"person_key": "person_key_child"}),
            on=["person_key_child", "trait"],
        )
        .select("person_key", "person_key_child")
        .unique()
    )
    one = cand.filter(pl.len().over("person_key") == 1)
    return one.select(pl.col("person_key").alias("a"), pl.col("person_key_child").alias("b"))


TRACE_RESPONSE = "dbs_trace_response.csv"


def load_trace_response(raw_dir: Path) -> pl.DataFrame | None:
    """A Demographics Batch Service response (reference/dbs_trace_response.csv), if any.

    Only rows the Spine traced, with a checksum-valid NHS number, are used."""
    path = raw_dir / "reference" / TRACE_RESPONSE
    if not path.exists():
        return None
    df = pl.read_csv(path, infer_schema=False)
    missing = {"source", "record_id", "result", "nhs_number"} - set(df.columns)
    if missing:
        raise SourceFileError(f"{path}: missing column(s) {sorted(missing)}")
    return df.filter(
        (pl.col("result") == "TRACED")
        & pl.col("nhs_number").map_elements(is_valid_nhs_number, return_dtype=pl.Boolean)
    ).select("source", "record_id", pl.col("nhs_number").alias("nhs_traced"))


def apply_trace(records: pl.DataFrame, trace: pl.DataFrame | None) -> tuple[pl.DataFrame, int]:
    """Fill missing NHS numbers from the trace; an NHS number the record carried always wins."""
    if trace is None:
        return records, 0
    out = records.join(trace, on=["source", "record_id"], how="left")
    filled = out.filter(pl.col("nhs_number").is_null() & pl.col("nhs_traced").is_not_null()).height
    out = out.with_columns(pl.coalesce("nhs_number", "nhs_traced").alias("nhs_number")).drop(
        "nhs_traced"
    )
    return out, filled


def link(
    results: dict[str, IngestResult],
    *,
    threshold: float | None = None,
    max_pairs: float = 2e6,
    trace: pl.DataFrame | None = None,
    engine: EngineConfig | None = None,
    trained: dict[str, Any] | None = None,
) -> Linked:
    """Persons and families from the accepted records. `engine`: where Splink runs
    (DuckDB by default); `trained`: a saved model to apply instead of training one."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    everything, traced = apply_trace(person_records(results), trace)
    is_objection = pl.col("source") == OBJECTIONS
    records = everything.filter(~is_objection)
    objection_rows = everything.filter(is_objection)
    det = deterministic_edges(records)
    timings["deterministic"] = time.perf_counter() - t
    t = time.perf_counter()
    # The model scores objection rows too (that is how they are matched), but only links
    # between other records form persons, and only those are merge decisions.
    # An address a source carries only as an optional column forms families only: measured
    # at 20,000 people, scoring the school's pupil address too lowered person precision
    # (0.9920 -> 0.9917), and person linkage stays as it was without the new columns.
    scored = score_pairs(
        without_family_only_address(everything),
        max_pairs=max_pairs,
        engine=engine,
        trained=trained,
    )
    groups = pl.DataFrame(
        {"uid": records["unique_id"], "group": components(records["unique_id"], det, engine)}
    )
    decisions = merge_decisions(scored.pairs, groups)
    probs = decisions["match_probability"]
    choice = choose_threshold(probs) if threshold is None else threshold_at(probs, threshold)
    prob = scored.pairs.filter(pl.col("match_probability") >= choice.threshold)
    settings = scored.model
    training = dict(scored.training, threshold=choice.to_dict(), pairs_at_threshold=prob.height)
    timings["splink"] = time.perf_counter() - t
    t = time.perf_counter()
    obj_ids = objection_rows["unique_id"].implode()
    person_edges = prob.filter(~pl.col("uid_l").is_in(obj_ids) & ~pl.col("uid_r").is_in(obj_ids))
    person = components(
        records["unique_id"], pl.concat([det, person_edges.select("uid_l", "uid_r")]), engine
    )
    records = records.with_columns(person.alias("person_key"))
    objections = match_objections(objection_rows, records, prob.select("uid_l", "uid_r"))
    fam_e = family_edges(records, school_contacts(results), early_years_claimants(results))
    persons = records["person_key"].unique().sort()
    fam = components(
        persons.cast(pl.Utf8),
        fam_e.select(
            pl.col("a").cast(pl.Utf8).alias("uid_l"), pl.col("b").cast(pl.Utf8).alias("uid_r")
        ),
        engine,
    )
    fam_map = pl.DataFrame({"person_key": persons, "family_key": fam})
    # Downstream (zone B's geography, clerical review) sees the records as persons were
    # linked: the family-only addresses have done their work.
    records = without_family_only_address(records.join(fam_map, on="person_key", how="left"))
    timings["cluster"] = time.perf_counter() - t
    model = LinkageModel(
        settings=settings,
        threshold=choice.threshold,
        training=training,
        counts={
            "records": records.height,
            "nhs_numbers_traced": traced,
            "deterministic_links": det.height,
            "probabilistic_links": prob.height,
            "persons": int(records["person_key"].n_unique()),
            "families": int(records["family_key"].n_unique()),
        },
    )
    return Linked(
        records=records,
        model=model,
        timings=timings,
        decisions=decisions.drop("a", "b"),
        objections=objections,
    )
