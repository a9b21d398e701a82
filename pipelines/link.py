"""Link: accepted source records into persons and persons into families.

Persons
    1. Deterministic: records that share a valid strong identifier (NHS
       number, NI number, UPN, or the social care system's own person id)
       are the same person. Invalid identifiers were already blanked at ingest,
       so a mistyped number never joins two people.
    2. Probabilistic: Splink 5 on DuckDB (the same settings run on Spark)
       scores record pairs on forename and surname (Jaro-Winkler with
       term-frequency adjustments), date of birth (exact, day/month
       transposed, near) and postcode. u is estimated by random sampling, m by
       EM on two blocking passes; pairs at or above `MATCH_THRESHOLD` are
       links. Town and county are deliberately not compared: they are
       correlated with postcode and would double-count it.
    3. Persons are the connected components of both kinds of link (probabilistic
       ones at match probability >= MATCH_THRESHOLD, chosen by a threshold sweep;
       see docs/linkage.md).

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
      records dated within 365 days of each other;
    - they share an Early Help family reference or episode;
    - they share a surname and a postcode in records within 365 days of
      each other and at least one of them was a child at the time.
    Families are the connected components of these links; a person with no
    such evidence is a family of one.
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

from pipelines.contracts import get_contract
from pipelines.identifiers import is_valid_nhs_number
from pipelines.ingest import IngestResult, SourceFileError

MATCH_THRESHOLD = 0.999
STRONG_IDS = ("nhs_number", "ni_number", "upn", "lcs_person_id")
OBJECTIONS = "objections"
MODEL_ROUTE = "name_and_date_of_birth"  # an objection matched through the linkage model
LINK_COLUMNS = (
    "forename", "surname", "dob", "sex", "postcode", "address_line1",
    "nhs_number", "ni_number", "upn", "lcs_person_id", "ehm_family_ref", "episode_id",
)  # fmt: skip
SAME_ADDRESS_DAYS = 365


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


def splink_settings() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel('"dob_l" = "dob_swapped_r"', "day and month transposed"),
            cll.DamerauLevenshteinLevel("dob", 1),
            cll.AbsoluteDateDifferenceLevel(
                "dob", input_is_string=True, threshold=1, metric="year"
            ),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1e-5,
        comparisons=[
            cl.NameComparison("forename").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            dob,
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("sex"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("dob"),
            block_on("forename", "surname"),
            block_on("surname", "postcode"),
            block_on("forename", "postcode"),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def _quiet_splink() -> None:
    """Splink logs every training step, and warns about untrained rare levels (which keep
    their defaults); the run reports its own summary and saves the model for audit."""
    import logging

    for name in ("splink", "splink.internals"):
        logging.getLogger(name).setLevel(logging.ERROR)


def probabilistic_edges(
    records: pl.DataFrame,
    *,
    threshold: float = MATCH_THRESHOLD,
    max_pairs: float = 2e6,
    seed: int = 1,
    memory_limit: str = "2GB",
    threads: int = 2,
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, Any]]:
    """Splink: train on the records, predict links at `threshold`."""
    from splink import DuckDBAPI, Linker, block_on

    _quiet_splink()
    named = records.filter(
        pl.col("forename").is_not_null()
        & pl.col("surname").is_not_null()
        & (pl.col("dob").is_not_null() | pl.col("postcode").is_not_null())
    ).select(
        "unique_id",
        "forename",
        "surname",
        pl.col("dob").dt.strftime("%Y-%m-%d").alias("dob"),
        pl.col("dob").dt.strftime("%Y-%d-%m").alias("dob_swapped"),
        "sex",
        "postcode",
    )
    import duckdb

    # DuckDB would otherwise take up to 80% of RAM; a cap keeps a county run
    # inside the memory budget (it spills to disk past the cap).
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads})
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(named.to_arrow()), splink_settings())
    training: dict[str, Any] = {"records": named.height, "max_pairs_u": max_pairs}
    linker.training.estimate_probability_two_random_records_match(
        [block_on("forename", "surname", "dob")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("surname", "postcode"), estimate_without_term_frequencies=True
    )
    pred = linker.inference.predict(threshold_match_probability=threshold)
    edges = pl.from_arrow(
        pred.as_duckdbpyrelation().select("unique_id_l, unique_id_r, match_probability").arrow()
    )
    assert isinstance(edges, pl.DataFrame)
    edges = edges.rename({"unique_id_l": "uid_l", "unique_id_r": "uid_r"})
    model = linker.misc.save_model_to_json()
    training["pairs_at_threshold"] = edges.height
    return edges.select("uid_l", "uid_r", "match_probability"), model, training


def components(ids: pl.Series, edges: pl.DataFrame) -> pl.Series:
    """Connected components of `edges` over `ids`; labels are 0..k-1 in first-seen order."""
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


def family_edges(records: pl.DataFrame) -> pl.DataFrame:
    """Person-to-person links under the family rule (see module docstring)."""
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
        "ehm_family_ref",
        "episode_id",
    )
    edges = []

    def pairs_within(key: list[str], extra: pl.Expr | None = None) -> pl.DataFrame:
        sub = (
            r.select("person_key", "event_date", "dob", *key)
            .drop_nulls(key + ["event_date"])
            .unique()
        )
        # Link persons recorded under the same key within the time window.
        j = sub.join(sub, on=key, suffix="_r").filter(
            (pl.col("person_key") < pl.col("person_key_r"))
            & (
                (pl.col("event_date") - pl.col("event_date_r")).dt.total_days().abs()
                <= SAME_ADDRESS_DAYS
            )
        )
        if extra is not None:
            j = j.filter(extra)
        return j.select(pl.col("person_key").alias("a"), pl.col("person_key_r").alias("b")).unique()

    edges.append(pairs_within(["address"]))
    child = lambda dob, at: (at - dob).dt.total_days() < 18 * 365.25  # noqa: E731
    edges.append(
        pairs_within(
            ["surname", "postcode"],
            child(pl.col("dob"), pl.col("event_date"))
            | child(pl.col("dob_r"), pl.col("event_date_r")),
        )
    )
    for ref in ("ehm_family_ref", "episode_id"):
        sub = r.select("person_key", ref).drop_nulls().unique()
        first = sub.group_by(ref).agg(pl.col("person_key").min().alias("b"))
        edges.append(
            sub.join(first, on=ref)
            .select(pl.col("person_key").alias("a"), "b")
            .filter(pl.col("a") != pl.col("b"))
        )
    return pl.concat(edges).unique()


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
    threshold: float = MATCH_THRESHOLD,
    max_pairs: float = 2e6,
    trace: pl.DataFrame | None = None,
) -> Linked:
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
    # between other records form persons.
    prob, settings, training = probabilistic_edges(
        everything, threshold=threshold, max_pairs=max_pairs
    )
    timings["splink"] = time.perf_counter() - t
    t = time.perf_counter()
    obj_ids = objection_rows["unique_id"].implode()
    person_edges = prob.filter(~pl.col("uid_l").is_in(obj_ids) & ~pl.col("uid_r").is_in(obj_ids))
    person = components(
        records["unique_id"], pl.concat([det, person_edges.select("uid_l", "uid_r")])
    )
    records = records.with_columns(person.alias("person_key"))
    objections = match_objections(objection_rows, records, prob.select("uid_l", "uid_r"))
    fam_e = family_edges(records)
    persons = records["person_key"].unique().sort()
    fam = components(
        persons.cast(pl.Utf8),
        fam_e.select(
            pl.col("a").cast(pl.Utf8).alias("uid_l"), pl.col("b").cast(pl.Utf8).alias("uid_r")
        ),
    )
    fam_map = pl.DataFrame({"person_key": persons, "family_key": fam})
    records = records.join(fam_map, on="person_key", how="left")
    timings["cluster"] = time.perf_counter() - t
    model = LinkageModel(
        settings=settings,
        threshold=threshold,
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
    return Linked(records=records, model=model, timings=timings, objections=objections)
