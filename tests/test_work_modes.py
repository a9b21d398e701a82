"""The pipeline's work folder is the owner's alone: zone A and zone B folders 0700, their
files 0600 (zone A holds names, dates of birth and NHS numbers)."""

from __future__ import annotations

import os
import stat
from datetime import date

from anonymise.pseudonymise import MasterKey
from pipelines.run import run_pipeline
from pipelines.store import Store
from synthetic.generator import generate_county


def test_zone_folders_are_0700_and_files_0600(tmp_path):
    generate_county(2000, 5, tmp_path / "raw")
    outer = os.umask(0o022)  # a typical shell's: new files would be world-readable
    try:
        run_pipeline(
            tmp_path / "raw", tmp_path / "work", MasterKey(b"w" * 32, "environment"),
            as_at=date(2026, 11, 21), store=Store(f"sqlite:///{tmp_path / 's.sqlite'}"),
            sdc_secret=b"s" * 32, accept_unmatched_objections="all",
        )  # fmt: skip
        after = os.umask(0o022)
    finally:
        os.umask(outer)
    work = tmp_path / "work"
    checked = {"dirs": 0, "files": 0}
    for zone in ("zone_a", "zone_b"):
        for path in [work / zone, *(work / zone).rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                assert mode == 0o700, f"{path.relative_to(work)} is {oct(mode)}"
                checked["dirs"] += 1
            else:
                assert mode == 0o600, f"{path.relative_to(work)} is {oct(mode)}"
                checked["files"] += 1
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    assert (work / "zone_a" / "linked_records.parquet").exists()
    assert checked["dirs"] >= 4 and checked["files"] >= 10, checked
    assert after == 0o022, "the process's umask is given back"
