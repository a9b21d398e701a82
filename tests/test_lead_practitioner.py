"""The EHM extract's lead practitioner: added without changing any other value of any
extract (it is drawn from a random stream of its own), one reference per episode, and
validated by the Early Help contract."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.contracts import EARLY_HELP
from synthetic import generator
from synthetic.practitioners import with_lead_practitioners


def _files(d: Path) -> dict[str, Path]:
    return {p.relative_to(d).as_posix(): p for p in sorted(d.rglob("*")) if p.is_file()}


def test_the_field_changes_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator.generate_county(800, 5, tmp_path / "with")
    # The same county with the field left blank: no practitioner drawn at all.
    monkeypatch.setattr(
        generator,
        "with_lead_practitioners",
        lambda frame, seed: frame.with_columns(pl.lit(None, pl.String).alias("lead_practitioner")),
    )
    generator.generate_county(800, 5, tmp_path / "without")
    with_, without = _files(tmp_path / "with"), _files(tmp_path / "without")
    assert set(with_) == set(without)
    ehm = [name for name in with_ if name.endswith(".csv") and "early_help" in name]
    assert len(ehm) == 1
    for name in with_:
        if name in ehm:
            continue
        assert with_[name].read_bytes() == without[name].read_bytes(), name
    a = pl.read_csv(with_[ehm[0]], infer_schema=False)
    b = pl.read_csv(without[ehm[0]], infer_schema=False)
    assert a["lead_practitioner"].null_count() < a.height
    assert b["lead_practitioner"].null_count() == b.height
    assert a.drop("lead_practitioner").equals(b.drop("lead_practitioner"))


def test_one_reference_per_episode_and_some_unallocated() -> None:
    eh = pl.DataFrame(
        {
            "episode_no": [1, 1, 2, 3, 3, 4] * 10,
            "assessment_date": [None, None, "2024-01-01", "2024-02-01", None, None] * 10,
        }
    ).with_columns(pl.col("episode_no") + pl.int_range(pl.len()) // 6 * 10)
    out = with_lead_practitioners(eh, seed=3)
    assert out.height == eh.height
    per_episode = out.group_by("episode_no").agg(pl.col("lead_practitioner").n_unique())
    assert per_episode["lead_practitioner"].max() == 1
    assert out["lead_practitioner"].null_count() > 0
    assert out["lead_practitioner"].drop_nulls().str.contains(r"^LP\d{4}$").all()
    # Same seed, same references.
    assert out.equals(with_lead_practitioners(eh, seed=3))


def test_the_contract_names_the_field_as_optional() -> None:
    column = next(c for c in EARLY_HELP.columns if c.name == "lead_practitioner")
    assert column.required is False
