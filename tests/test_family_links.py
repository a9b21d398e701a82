"""Family linkage from the statutory returns and family quality by source."""

from __future__ import annotations

from datetime import date

import polars as pl

from pipelines.link import family_edges, mother_child_edges
from pipelines.quality import family_quality_by_source


def _records(rows: list[dict]) -> pl.DataFrame:
    cols = {"unique_id": pl.Utf8, "source": pl.Utf8, "person_key": pl.Int64, "dob": pl.Date,
            "surname": pl.Utf8, "postcode": pl.Utf8, "mc_dob": pl.Utf8, "event_date": pl.Date,
            "address_line1": pl.Utf8, "ehm_family_ref": pl.Utf8, "episode_id": pl.Utf8}  # fmt: skip
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=cols)


BABY = date(2024, 2, 3)


def test_a_looked_after_mother_links_to_her_one_child() -> None:
    recs = _records([
        # The mother: a 903 header row (no name) and a social care row with her postcode.
        {"unique_id": "h", "source": "ssda903_header", "person_key": 1, "mc_dob": "2024-02-03"},
        {"unique_id": "s", "source": "social_care", "person_key": 1, "postcode": "XM1 1AA",
         "surname": "ROSE"},
        # Her baby, born on MC_DOB, under another surname at her postcode.
        {"unique_id": "b", "source": "health", "person_key": 2, "dob": BABY,
         "postcode": "XM1 1AA", "surname": "HALE"},
        # Another baby born the same day elsewhere: not hers.
        {"unique_id": "o", "source": "health", "person_key": 3, "dob": BABY,
         "postcode": "XM9 9ZZ", "surname": "STONE"},
    ])  # fmt: skip
    edges = mother_child_edges(recs)
    assert edges.rows() == [(1, 2)]
    assert (1, 2) in family_edges(recs).select("a", "b").rows()


def test_two_candidate_children_are_ambiguous_and_not_linked() -> None:
    recs = _records([
        {"unique_id": "h", "source": "ssda903_header", "person_key": 1, "mc_dob": "2024-02-03",
         "surname": "ROSE", "postcode": "XM1 1AA"},
        {"unique_id": "b", "source": "health", "person_key": 2, "dob": BABY, "surname": "ROSE"},
        {"unique_id": "c", "source": "health", "person_key": 3, "dob": BABY,
         "postcode": "XM1 1AA"},
    ])  # fmt: skip
    assert mother_child_edges(recs).is_empty()


def test_family_quality_by_source() -> None:
    records = pl.DataFrame(
        {
            "unique_id": ["a1", "a2", "b1", "c1", "c2"],
            "source": ["early_help", "early_help", "school_census", "school_census", "police"],
            "person_key": [1, 2, 3, 4, 5],
            "family_key": [10, 10, 30, 40, 40],
        }
    )
    truth = pl.DataFrame(
        {
            "unique_id": ["a1", "a2", "b1", "c1", "c2"],
            "person_id": ["P1", "P2", "P3", "P4", "P5"],
            # 1, 2, 3 one family (3 split off); 4 and 5 two families (merged).
            "family_id": ["F1", "F1", "F1", "F4", "F5"],
        }
    )
    q = {r["source"]: r for r in family_quality_by_source(records, truth).to_dicts()}
    # Early Help: true pairs (1,2) found, (1,3), (2,3) missed; its one predicted pair right.
    assert q["early_help"]["true_pairs"] == 3 and abs(q["early_help"]["recall"] - 1 / 3) < 1e-9
    assert q["early_help"]["precision"] == 1.0
    # School census: (1,3), (2,3) missed; predicted (4,5) wrong.
    assert q["school_census"]["recall"] == 0.0 and q["school_census"]["precision"] == 0.0
    assert q["police"]["true_pairs"] is None or q["police"]["true_pairs"] == 0
