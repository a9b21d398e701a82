"""Outputs change only on purpose. Digests of a small synthetic county (every extract and
the ground truth) and of its release's protected tables (every measure, in total and by
each of its breakdowns) are kept in tests/output_digests.json. A refactor must leave them
as they are; a change that moves them on purpose updates the file in the same commit and
says why:

    PORTAL_UPDATE_DIGESTS=1 .venv/bin/python -m pytest tests/test_output_digest.py
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path

import pytest

from anonymise.policy import default_policy
from anonymise.pseudonymise import MasterKey
from anonymise.release import clear_cache
from pipelines.run import run_pipeline
from pipelines.store import Store
from synthetic.generator import generate_county
from tests.release_tables import protected_tables

DIGESTS = Path(__file__).with_name("output_digests.json")
POLICY = default_policy()
SECRET = b"d" * 32


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _county_digests(raw: Path) -> dict[str, str]:
    return {
        str(p.relative_to(raw)): _sha(p.read_bytes()) for p in sorted(raw.rglob("*")) if p.is_file()
    }


def _table_digests(store: Store) -> dict[str, str]:
    tables = protected_tables(store, POLICY, SECRET)
    return {name: _sha(csv.encode("utf-8")) for name, csv in tables.items()}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("digest")
    generate_county(2000, 101, d / "raw")
    store = Store(f"sqlite:///{d / 'store.sqlite'}")
    run_pipeline(d / "raw", d / "work", MasterKey(b"g" * 32, "environment"),
                 as_at=date(2026, 3, 31), store=store, sdc_secret=SECRET,
                 accept_unmatched_objections="all")  # fmt: skip
    clear_cache()
    got = {"county": _county_digests(d / "raw"), "tables": _table_digests(store)}
    store.dispose()
    return got


def test_outputs_match_the_recorded_digests(outputs):
    if os.environ.get("PORTAL_UPDATE_DIGESTS") == "1":
        DIGESTS.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
    expected = json.loads(DIGESTS.read_text())
    for part in ("county", "tables"):
        changed = sorted(k for k in expected[part] if outputs[part].get(k) != expected[part][k])
        added = sorted(set(outputs[part]) - set(expected[part]))
        assert not changed and not added, (
            f"{part}: outputs changed ({changed[:10]}{'...' if len(changed) > 10 else ''}) "
            f"or appeared ({added[:10]}). If that is deliberate, regenerate "
            "tests/output_digests.json (see this module's docstring) and say why in the commit."
        )
