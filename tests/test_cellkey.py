"""The cell key method: record keys, cube aggregation and the perturbation table."""

from __future__ import annotations

import hmac
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymise import cellkey
from anonymise.cellkey import (
    KEY_MODULUS,
    PTABLE_ROWS,
    PerturbationTable,
    SecretNotConfiguredError,
    build_cube,
    load_sdc_secret,
    noise_distribution,
    protect_counts,
    record_keys,
    unit_hashes,
    with_record_key,
)
from anonymise.hmac_batch import hmac_sha256_many

SECRET = bytes(range(32))
TABLE = PerturbationTable.generate(SECRET, max_noise=3, variance=1.0)
THRESHOLD = 10


# --- record keys ---------------------------------------------------------------------


def test_record_keys_are_persistent_and_secret_dependent() -> None:
    names = pl.Series("pid", [f"P{i:05d}" for i in range(2000)])
    keys = record_keys(names, SECRET)
    assert keys.dtype == pl.UInt8
    # Same pseudonym, same key: in another order, in another call (another release).
    shuffled = names.sample(fraction=1.0, shuffle=True, seed=1)
    again = dict(zip(shuffled.to_list(), record_keys(shuffled, SECRET).to_list(), strict=True))
    assert all(again[p] == k for p, k in zip(names.to_list(), keys.to_list(), strict=True))
    # A different secret gives unrelated keys.
    other = record_keys(names, bytes(range(1, 33)))
    assert (other == keys).mean() < 0.05  # type: ignore[operator]
    # Roughly uniform over 0..255 (the cell key's uniformity rests on this).
    counts = np.bincount(keys.to_numpy(), minlength=256)
    expected = len(names) / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 400  # 255 degrees of freedom; p < 1e-6 would be ~ 360-400


def test_record_keys_need_a_pseudonym_and_a_real_secret() -> None:
    with pytest.raises(ValueError, match="pseudonym"):
        record_keys(pl.Series(["a", None]), SECRET)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        record_keys(pl.Series(["a"]), b"short")


def test_with_record_key_is_lazy_and_matches() -> None:
    lf = pl.LazyFrame({"person": ["a", "b", "c"], "ward": ["W1", "W1", "W2"]})
    out = with_record_key(lf, pseudonym="person", secret=SECRET)
    assert isinstance(out, pl.LazyFrame)
    got = out.collect()["record_key"].to_list()
    assert got == record_keys(pl.Series(["a", "b", "c"]), SECRET).to_list()


# --- cubes ----------------------------------------------------------------------------


def _records(n: int = 500, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    pids = [f"P{i}" for i in range(n)]
    return pl.DataFrame(
        {
            "pid": pids,
            "ward": rng.choice(["W1", "W2", "W3"], n),
            "sex": rng.choice(["F", "M"], n),
            "age_band": rng.choice(["0-4", "5-9"], n),
        }
    ).with_columns(record_keys(pl.Series(pids), SECRET).alias("record_key"))


def test_cube_counts_and_keys_match_brute_force() -> None:
    records = _records()
    cube = build_cube(records.lazy(), ["ward", "sex", "age_band"]).collect()
    assert cube.columns == ["ward", "sex", "age_band", "n", "ckey"]
    for row in cube.iter_rows(named=True):
        members = records.filter(
            (pl.col("ward") == row["ward"])
            & (pl.col("sex") == row["sex"])
            & (pl.col("age_band") == row["age_band"])
        )
        assert row["n"] == members.height > 0
        assert row["ckey"] == int(members["record_key"].cast(pl.Int64).sum()) % 256


def test_coarser_cells_are_sums_of_finer_cells() -> None:
    records = _records()
    fine = build_cube(records, ["ward", "sex", "age_band"]).collect()
    coarse = build_cube(records, ["ward"]).collect()
    rolled = (
        fine.group_by("ward")
        .agg(pl.col("n").sum(), pl.col("ckey").sum() % 256)
        .sort("ward")
        .with_columns(pl.col("n").cast(pl.Int64), pl.col("ckey").cast(pl.Int64))
    )
    assert rolled.equals(coarse.sort("ward"))


# --- the perturbation table --------------------------------------------------------------


def test_ptable_is_deterministic_given_the_secret() -> None:
    again = PerturbationTable.generate(SECRET, max_noise=3, variance=1.0)
    assert np.array_equal(again.noise, TABLE.noise)
    assert again.fingerprint == TABLE.fingerprint
    other = PerturbationTable.generate(bytes(32), max_noise=3, variance=1.0)
    assert not np.array_equal(other.noise, TABLE.noise)
    assert other.fingerprint != TABLE.fingerprint
    # Parameters are part of the table too.
    wider = PerturbationTable.generate(SECRET, max_noise=4, variance=1.0)
    assert wider.fingerprint != TABLE.fingerprint
    assert not TABLE.noise.flags.writeable


def _check_table(table: PerturbationTable, threshold: int) -> None:
    d, v = table.max_noise, table.variance
    noise = table.noise.astype(np.int64)
    counts = np.arange(PTABLE_ROWS)[:, None]
    assert np.abs(noise).max() <= d  # bounded
    assert (counts + noise >= 0).all()  # never negative
    assert (noise[0] == 0).all()  # zeros stay zero
    assert (noise.sum(axis=1) == 0).all()  # exactly unbiased over the 256 cell keys
    full = noise[d:]
    assert np.allclose((full.astype(float) ** 2).mean(axis=1), v, atol=0.05 + v * 0.02)
    for count in range(1, threshold):
        # A small true count never maps to one fixed published value.
        assert len(np.unique(count + noise[count])) >= 2


def test_ptable_properties_default_parameters() -> None:
    _check_table(TABLE, THRESHOLD)
    # Counts beyond the table reuse rows that carry the full distribution.
    big = np.array([PTABLE_ROWS, 5000, 123_456_789])
    assert (PerturbationTable.row_for(big) >= max(PTABLE_ROWS // 2, TABLE.max_noise)).all()
    assert TABLE.transition(5000) == TABLE.transition(20)


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(1, 6),
    v_fraction=st.floats(0.1, 0.5),
    secret=st.binary(min_size=16, max_size=40),
)
def test_ptable_properties_hold_for_any_valid_policy(
    d: int, v_fraction: float, secret: bytes
) -> None:
    variance = max(0.3, round(v_fraction * d * d, 3))
    table = PerturbationTable.generate(secret, max_noise=d, variance=variance)
    _check_table(table, threshold=d + 1)


def test_noise_distribution_is_max_entropy_shaped() -> None:
    dist = noise_distribution(20, 3, 1.0)
    assert sum(dist.values()) == pytest.approx(1.0)
    assert sum(k * p for k, p in dist.items()) == pytest.approx(0.0, abs=1e-9)
    assert sum(k * k * p for k, p in dist.items()) == pytest.approx(1.0, abs=1e-9)
    assert dist[0] > dist[1] > dist[2] > dist[3] > 0 and dist[1] == pytest.approx(dist[-1])
    assert min(noise_distribution(1, 3, 1.0)) == -1  # cannot go below zero
    assert noise_distribution(0, 3, 1.0) == {0: 1.0}


def test_protect_counts_zero_rule_and_threshold() -> None:
    rng = np.random.default_rng(0)
    counts = np.concatenate([np.zeros(50, int), rng.integers(1, 40, 5000)])
    ckeys = rng.integers(0, KEY_MODULUS, counts.size)
    values, suppressed = protect_counts(counts, ckeys, TABLE, THRESHOLD)
    assert (values[counts == 0] == 0).all() and not suppressed[counts == 0].any()
    shown = ~suppressed & (counts > 0)
    assert (values[shown] >= THRESHOLD).all()
    assert (np.abs(values[shown] - counts[shown]) <= TABLE.max_noise).all()
    assert (values[suppressed] == -1).all()
    perturbed = TABLE.perturb(counts, ckeys)
    assert np.array_equal(suppressed, (counts > 0) & (perturbed < THRESHOLD))
    # Same count and key, same answer.
    again, _ = protect_counts(counts, ckeys, TABLE, THRESHOLD)
    assert np.array_equal(values, again)
    # Some counts do move: the noise is real.
    assert (perturbed != counts).mean() > 0.3


def test_secret_comes_from_environment_or_key_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    hexsecret = "ab" * 32
    assert load_sdc_secret({cellkey.SECRET_ENV: hexsecret}) == bytes.fromhex(hexsecret)
    key_file = tmp_path / "sdc.key"
    key_file.write_text(hexsecret + "\n")
    assert load_sdc_secret({cellkey.SECRET_FILE_ENV: str(key_file)}) == bytes.fromhex(hexsecret)
    with pytest.raises(SecretNotConfiguredError, match="PORTAL_SDC_SECRET"):
        load_sdc_secret({})
    with pytest.raises(SecretNotConfiguredError, match="at least 16"):
        load_sdc_secret({cellkey.SECRET_ENV: "abcd"})
    with pytest.raises(SecretNotConfiguredError, match="cannot read"):
        load_sdc_secret({cellkey.SECRET_FILE_ENV: str(tmp_path / "missing.key")})
    # The environment wins over a key file.
    assert load_sdc_secret({cellkey.SECRET_ENV: "cd" * 16}, key_file=key_file) == bytes([0xCD] * 16)


def test_demo_mode_generates_a_local_secret_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SecretNotConfiguredError):
        load_sdc_secret({})  # production never generates one
    first = load_sdc_secret({}, demo=True)
    path = tmp_path / cellkey.DEFAULT_DEMO_SECRET_FILE
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    assert load_sdc_secret({}, demo=True) == first
    assert load_sdc_secret({cellkey.SECRET_FILE_ENV: str(path)}) == first
    other = load_sdc_secret({}, key_file=tmp_path / "other.key", demo=True)
    assert other != first and len(other) == 32


def test_ptable_for_uses_environment_secret_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cellkey.SECRET_ENV, "cd" * 32)
    first = cellkey.ptable_for(3, 1.0)
    assert cellkey.ptable_for(3, 1.0) is first
    monkeypatch.setenv(cellkey.SECRET_ENV, "ef" * 32)
    assert cellkey.ptable_for(3, 1.0).fingerprint != first.fingerprint
    monkeypatch.delenv(cellkey.SECRET_ENV)
    monkeypatch.delenv(cellkey.SECRET_FILE_ENV, raising=False)
    with pytest.raises(SecretNotConfiguredError):
        cellkey.ptable_for(3, 1.0)


# --- hashing many units: the fast path gives the digests the ledgers already hold ----------------

_SAMPLE = [
    "p0123456789abcdef0123456789abcdef|2025-01",
    "",  # empty
    "Zoë|Ångström|日本語|🙂",  # multi-byte UTF-8
    "x" * 300,  # longer than SHA-256's block
    "referral|p" + "f" * 32 + "|2026-03-31",
    "referral|p" + "f" * 32 + "|2026-03-31",  # a repeat (hashed once, returned twice)
    *(f"u{i}" for i in range(40)),
]


def _reference_unit_hashes(values: list[str], secret: bytes) -> list[str]:
    """The original per-unit loop, kept here as the definition the ledgers rely on."""
    subkey = cellkey.derive_key(secret, "ledger-unit")
    return [hmac.digest(subkey, v.encode("utf-8"), "sha256")[:16].hex() for v in values]


def _reference_record_keys(values: list[str], secret: bytes, epoch: int) -> list[int]:
    domain = b"portal-sdc/record-key/v1" + (f"|epoch={epoch}".encode() if epoch else b"")
    subkey = hmac.digest(secret, domain, "sha256")
    return [hmac.digest(subkey, v.encode("utf-8"), "sha256")[0] for v in values]


@pytest.mark.parametrize("parallel_from", [10**9, 2], ids=["one process", "two processes"])
def test_fast_hashes_are_exactly_the_original_ones(monkeypatch, parallel_from) -> None:
    monkeypatch.setattr(cellkey, "PARALLEL_HASH_FROM", parallel_from)
    values = pl.Series("unit_id", _SAMPLE)
    assert unit_hashes(values, SECRET).to_list() == _reference_unit_hashes(_SAMPLE, SECRET)
    for epoch in (0, 3):
        got = record_keys(values, SECRET, epoch=epoch).to_list()
        assert got == _reference_record_keys(_SAMPLE, SECRET, epoch)


def test_values_that_are_not_text_are_hashed_as_their_text() -> None:
    numbers = pl.Series("pid", [7, 12, 7, 300])
    assert record_keys(numbers, SECRET).to_list() == _reference_record_keys(
        ["7", "12", "7", "300"], SECRET, 0
    )


def test_hmac_batch_matches_hmac_for_any_key_length() -> None:
    messages = [m.encode("utf-8") for m in _SAMPLE]
    for key in (b"k" * 16, bytes(range(64)), b"long key " * 20):
        expected = b"".join(hmac.digest(key, m, "sha256") for m in messages)
        assert hmac_sha256_many(key, messages) == expected


def test_the_second_process_gets_the_key_only_on_stdin(monkeypatch) -> None:
    started: list[dict] = []
    real_popen = subprocess.Popen

    def spy(args, **kwargs):
        started.append({"args": list(args), "env": kwargs.get("env")})
        return real_popen(args, **kwargs)

    monkeypatch.setattr(cellkey.subprocess, "Popen", spy)
    values = pl.Series("unit_id", [f"unit-{i}" for i in range(50)])
    got = cellkey.keyed_digests(values, b"K" * 32, parallel_from=10)
    assert len(started) == 1
    argv = " ".join(started[0]["args"])
    assert "K" * 32 not in argv and (b"K" * 32).hex() not in argv
    assert started[0]["env"] == {}  # none of this process's secrets either
    expected = [hmac.digest(b"K" * 32, v.encode(), "sha256") for v in values.to_list()]
    assert [bytes(row) for row in got] == expected


@pytest.mark.parametrize("exit_at", ["start", "end"])
def test_hashing_falls_back_to_one_process_when_the_second_fails(monkeypatch, exit_at) -> None:
    real_popen = subprocess.Popen
    # A worker that dies at once (the parent's write fails) or after reading everything.
    code = (
        "import sys; sys.exit(3)"
        if exit_at == "start"
        else "import sys; sys.stdin.buffer.read(); sys.exit(3)"
    )

    def broken(args, **kwargs):
        return real_popen([sys.executable, "-c", code], **kwargs)

    monkeypatch.setattr(cellkey.subprocess, "Popen", broken)
    values = pl.Series("unit_id", _SAMPLE)
    got = cellkey.keyed_digests(values, SECRET, parallel_from=2)
    assert [bytes(r) for r in got] == [hmac.digest(SECRET, v.encode(), "sha256") for v in _SAMPLE]
