"""Where the UCI Adult benchmark (with ARX's hierarchies) lives: shared/ beside the
repository, as on every developer machine and in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

ADULT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "adult"
if not ADULT.exists():  # a checkout elsewhere on this workplace's machines
    ADULT = Path("/work/shared/benchmarks/adult")
ADULT_QI = [
    "sex", "age", "race", "marital-status", "education",
    "native-country", "workclass", "occupation", "salary-class",
]  # fmt: skip
needs_adult = pytest.mark.skipif(not ADULT.exists(), reason="Adult benchmark data not present")
