"""`pipelines.zone_b.modes`: each key's most common non-null value, the smallest on a tie,
exactly as polars' own `drop_nulls().mode().sort().first()` per group, which it replaced
because polars runs that group by group."""

from __future__ import annotations

from datetime import date

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.zone_b import modes


def _by_group(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    return frame.group_by("k").agg(pl.col(column).drop_nulls().mode().sort().first())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.one_of(st.none(), st.sampled_from("abcd"))),
        min_size=1,
        max_size=60,
    )
)
def test_the_same_as_the_per_group_mode(rows: list[tuple[int, str | None]]) -> None:
    frame = pl.DataFrame(rows, schema={"k": pl.Int64, "v": pl.Utf8}, orient="row")
    got = modes(frame, "k", {"v": "v"}).sort("k")
    assert got.equals(_by_group(frame, "v").sort("k"))


def test_ties_take_the_smallest_and_a_key_with_only_nulls_gets_null() -> None:
    frame = pl.DataFrame(
        {
            "k": [1, 1, 1, 1, 2, 2, 3],
            "v": ["b", "a", "b", "a", None, None, "z"],
            "d": [date(2020, 1, 2), date(2020, 1, 1), None, None, None, date(2019, 5, 5), None],
        }
    )
    got = modes(frame, "k", {"v": "value", "d": "day"}).sort("k")
    assert got.to_dicts() == [
        {"k": 1, "value": "a", "day": date(2020, 1, 1)},
        {"k": 2, "value": None, "day": date(2019, 5, 5)},
        {"k": 3, "value": "z", "day": None},
    ]
