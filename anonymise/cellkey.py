"""The cell key method: persistent record keys, cell keys and a secret perturbation table.

How it works (ONS Census 2021, ABS TableBuilder):
- every counted unit (person, family or event) carries a record key in 0..255,
  derived from a keyed HMAC of its pseudonym, so the same unit has the same key
  in every release of one key *epoch*; a revision release starts a new epoch, which
  redraws every record key (and so every cell's noise) at once;
- a cell's key is the sum of its records' keys mod 256, so a cell made of the same
  records always has the same key, however the table that contains it was asked for;
- a secret perturbation table (ptable) maps (true count, cell key) to a bounded,
  zero-mean noise, so the same cell always gets the same published value and a
  total is perturbed on its own, never as the sum of its perturbed parts;
- true zeros stay 0; any other cell whose perturbed count is below the policy
  threshold is suppressed (shown "c" by `anonymise.release`).

The ptable is generated deterministically from a secret that lives outside the
repo and the store (`load_sdc_secret`). See docs/disclosure-control.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from anonymise import hmac_batch
from anonymise.hmac_batch import DIGEST_BYTES, encode_request, hmac_sha256_many
from registry.measures import KEY_MODULUS  # one modulus for the keys and the store's check
from registry.settings import ServiceSettings

# Names of environment variables, not secrets.
SECRET_ENV = "PORTAL_SDC_SECRET"  # noqa: S105
SECRET_FILE_ENV = "PORTAL_SDC_SECRET_FILE"  # noqa: S105
MIN_SECRET_BYTES = 16
DEFAULT_DEMO_SECRET_FILE = Path("data") / "demo" / "sdc.key"
# Rows 0..PTABLE_ROWS-1 each have their own key->noise assignment; larger counts
# reuse rows PTABLE_ROWS/2.. (all of which have the full [-D, D] distribution).
PTABLE_ROWS = 1024
# From this many distinct values, `keyed_digests` hashes half of them in a second process
# (starting it costs about 30 ms, the hashing about 1.6 microseconds a value).
PARALLEL_HASH_FROM = 100_000

log = logging.getLogger(__name__)

_RECORD_KEY_DOMAIN = b"portal-sdc/record-key/v1"
_UNIT_HASH_DOMAIN = "ledger-unit"
UNIT_HASH_BYTES = 16
_PTABLE_DOMAIN = b"portal-sdc/ptable/v1"
_FINGERPRINT_DOMAIN = b"portal-sdc/ptable-fingerprint/v1"


class SecretNotConfiguredError(RuntimeError):
    """No disclosure-control secret was found in the environment or a key file."""


# --- secrets ------------------------------------------------------------------


def load_sdc_secret(
    environ: Mapping[str, str] | None = None,
    *,
    key_file: Path | None = None,
    demo: bool = False,
) -> bytes:
    """The disclosure-control secret: $PORTAL_SDC_SECRET (hex), else `key_file` or the
    file named by $PORTAL_SDC_SECRET_FILE (hex text or raw bytes). Never from the repo
    or the store: anyone holding it and the published tables could strip the noise.

    Demo mode only: if none is set, a random key is written to data/demo/sdc.key (0600)
    and reused. Production never generates or defaults a secret."""
    settings = ServiceSettings.load(environ)
    if settings.sdc_secret is not None:
        secret = _decode_secret(settings.sdc_secret.get_secret_value().strip().encode())
        source = f"${SECRET_ENV}"
    elif key_file is not None or settings.sdc_secret_file is not None:
        path = Path(key_file) if key_file is not None else Path(str(settings.sdc_secret_file))
        if demo and not path.exists():
            _write_demo_secret(path)
        try:
            secret = _decode_secret(path.read_bytes().strip())
        except OSError as exc:
            raise SecretNotConfiguredError(f"cannot read {path}: {exc}") from None
        source = str(path)
    elif demo:
        if not DEFAULT_DEMO_SECRET_FILE.exists():
            _write_demo_secret(DEFAULT_DEMO_SECRET_FILE)
        secret = _decode_secret(DEFAULT_DEMO_SECRET_FILE.read_bytes().strip())
        source = str(DEFAULT_DEMO_SECRET_FILE)
    else:
        raise SecretNotConfiguredError(
            f"no disclosure-control secret: set ${SECRET_ENV} (hex) or ${SECRET_FILE_ENV} "
            "(path to a key file); create one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'` "
            "and keep it out of the repo and the store"
        )
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretNotConfiguredError(
            f"the secret from {source} is {len(secret)} bytes; at least {MIN_SECRET_BYTES} needed"
        )
    return secret


def _write_demo_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    log.warning("demo mode: generated a local disclosure-control secret in %s", path)


def _decode_secret(raw: bytes) -> bytes:
    try:
        return bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return raw


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A purpose-bound subkey, so one secret can serve record keys and the ptable."""
    return hmac.digest(secret, b"portal-sdc/derive/v1|" + purpose.encode(), "sha256")


# --- record keys and cubes --------------------------------------------------------


def record_keys(
    pseudonyms: pl.Series | Iterable[str], secret: bytes, *, epoch: int = 0
) -> pl.Series:
    """Record keys in 0..255: the first byte of HMAC-SHA256(subkey, pseudonym).

    Persistent: the same pseudonym, secret and epoch give the same key in every release.
    Epoch 0 is the original derivation; each later epoch has its own subkey, so moving
    to a new epoch redraws every key independently of the old ones."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"record key secret must be at least {MIN_SECRET_BYTES} bytes")
    if epoch < 0:
        raise ValueError("a record key epoch is 0 or more")
    values = pseudonyms if isinstance(pseudonyms, pl.Series) else pl.Series(list(pseudonyms))
    if values.null_count():
        raise ValueError("every counted unit needs a pseudonym to derive its record key")
    domain = _RECORD_KEY_DOMAIN if epoch == 0 else _RECORD_KEY_DOMAIN + f"|epoch={epoch}".encode()
    subkey = hmac.digest(secret, domain, "sha256")
    keys = keyed_digests(values, subkey)[:, 0]
    return pl.Series(values.name or "record_key", keys, dtype=pl.UInt8)


def unit_hashes(unit_ids: pl.Series | Iterable[str], secret: bytes) -> pl.Series:
    """A keyed hash of each counted unit's id (hex, 128 bits), under a subkey of the
    disclosure-control secret: what a release's ledger stores instead of the unit id, so
    the store alone cannot be joined to zone B's pseudonyms."""
    values = unit_ids if isinstance(unit_ids, pl.Series) else pl.Series(list(unit_ids))
    if values.null_count():
        raise ValueError("every counted unit needs an id")
    import pyarrow as pa  # here, not at import: the release service's start-up does not need it

    subkey = derive_key(secret, _UNIT_HASH_DOMAIN)
    digests = np.ascontiguousarray(keyed_digests(values, subkey)[:, :UNIT_HASH_BYTES])
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(UNIT_HASH_BYTES), len(values), [None, pa.py_buffer(digests)]
    )
    binary = pl.Series("unit_hash", fixed).cast(pl.Binary)
    return binary.bin.encode("hex").alias("unit_hash")


def keyed_digests(values: pl.Series, key: bytes, *, parallel_from: int | None = None) -> np.ndarray:
    """HMAC-SHA256(key, value as UTF-8) of each value, as an (n, 32) array of bytes.

    The same digests as `hmac.digest(key, str(v).encode("utf-8"), "sha256")`, computed
    once per distinct value, a third of the cost each (`anonymise.hmac_batch`), and for
    `parallel_from` distinct values or more (default PARALLEL_HASH_FROM) half of them in
    a second process: publishing is otherwise one thread while the machine has two cores.
    """
    if values.dtype != pl.String:
        # What str() makes of the value, as before: the digest is of its text.
        values = pl.Series(values.name, [str(v) for v in values.to_list()], dtype=pl.String)
    frame = pl.DataFrame({"v": values})
    distinct = frame.unique("v", maintain_order=True)["v"]
    out = np.frombuffer(
        _hmac_many(key, distinct, PARALLEL_HASH_FROM if parallel_from is None else parallel_from),
        dtype=np.uint8,
    ).reshape(len(distinct), DIGEST_BYTES)
    if len(distinct) == len(values):
        return out
    # Each value's row among the distinct values.
    at = frame.join(
        pl.DataFrame({"v": distinct, "i": np.arange(len(distinct), dtype=np.int64)}),
        on="v",
        how="left",
        maintain_order="left",
    )["i"].to_numpy()
    return out[at]


def _hmac_many(key: bytes, values: pl.Series, parallel_from: int) -> bytes:
    """The digests of `values` (String, no nulls), concatenated."""
    messages = values.cast(pl.Binary)
    if len(messages) < max(parallel_from, 2):
        return hmac_sha256_many(key, messages.to_list())
    half = len(messages) // 2
    theirs = messages[half:]
    lengths = theirs.bin.size().cast(pl.UInt32).to_numpy().tobytes()
    request = encode_request(key, lengths, b"".join(theirs.to_list()), len(theirs))
    # The worker is standard library only (`-I -S`) and gets an empty environment, so it
    # never holds the secrets this process may have read from its own; the subkey reaches
    # it on stdin (never argv), and it writes nothing but digests.
    worker: subprocess.Popen[bytes] | None = None
    try:
        worker = subprocess.Popen(  # noqa: S603 - our interpreter and our file, no input
            [sys.executable, "-I", "-S", hmac_batch.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
        )
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(b"".join(request))
        worker.stdin.close()
    except OSError as exc:
        if worker is not None:
            worker.kill()
            worker.communicate()
        log.warning("hashing in one process: the second failed (%s)", type(exc).__name__)
        return hmac_sha256_many(key, messages.to_list())
    mine = hmac_sha256_many(key, messages[:half].to_list())
    got = worker.stdout.read()
    worker.stdout.close()
    if worker.wait() != 0 or len(got) != DIGEST_BYTES * len(theirs):
        log.warning("hashing in one process: the second failed (exit %s)", worker.returncode)
        return mine + hmac_sha256_many(key, theirs.to_list())
    return mine + got


def with_record_key(
    lf: pl.LazyFrame, *, pseudonym: str, secret: bytes, name: str = "record_key", epoch: int = 0
) -> pl.LazyFrame:
    """Add the record key column derived from a pseudonym column (lazy)."""
    return lf.with_columns(
        pl.col(pseudonym)
        .map_batches(lambda s: record_keys(s, secret, epoch=epoch), return_dtype=pl.UInt8)
        .alias(name)
    )


def build_cube(
    records: pl.LazyFrame | pl.DataFrame, dims: Sequence[str], *, record_key: str = "record_key"
) -> pl.LazyFrame:
    """Aggregate record-level rows (one per counted unit) to the finest cross-classification
    of `dims`: one row per non-empty cell with `n` (true count) and `ckey` (cell key).

    Any coarser table's count and cell key are sums (mod 256 for keys) of these rows, so
    the release layer can answer every allowed breakdown and filter from the cube alone."""
    dims = list(dims)
    if len(set(dims)) != len(dims):
        raise ValueError(f"duplicate dimension in {dims}")
    return (
        records.lazy()
        .group_by(dims)
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            (pl.col(record_key).cast(pl.Int64).sum() % KEY_MODULUS).alias("ckey"),
        )
        .with_columns(*(pl.col(d).cast(pl.String) for d in dims))
        .sort(dims)
    )


# --- the perturbation table ---------------------------------------------------------


def noise_distribution(count: int, max_noise: int, variance: float) -> dict[int, float]:
    """Maximum-entropy noise distribution for a true count (as in the sdcTools ptable
    package): support max(-count, -D)..D, mean exactly 0, variance V where the support
    allows it (small counts cannot go negative, so their variance is capped at 90% of
    the largest the support allows). Count 0 never moves."""
    if count <= 0:
        return {0: 1.0}
    lo, hi = max(-count, -max_noise), max_noise
    ks = np.arange(lo, hi + 1, dtype=float)
    target = min(variance, 0.9 * (-lo) * hi)
    # Dual of max entropy: p_k ~ exp(a k + b k^2); Newton on the convex log-partition.
    theta = np.array([0.0, -1.0 / (2 * target)])
    feats = np.stack([ks, ks**2])
    goal = np.array([0.0, target])

    def dual(t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        z = t @ feats
        m = z.max()
        w = np.exp(z - m)
        p = w / w.sum()
        return float(np.log(w.sum()) + m - t @ goal), p, feats @ p - goal

    value, p, grad = dual(theta)
    for _ in range(200):
        if np.abs(grad).max() < 1e-12:
            break
        centred = feats - (feats @ p)[:, None]
        hess = (centred * p) @ centred.T + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-10:
            cand = theta - t * step
            cand_value, cand_p, cand_grad = dual(cand)
            if cand_value <= value - 1e-4 * t * (grad @ step):
                break
            t /= 2
        theta, value, p, grad = cand, cand_value, cand_p, cand_grad
    return {int(k): float(q) for k, q in zip(ks, p, strict=True)}


def _quantise(dist: Mapping[int, float], slots: int = KEY_MODULUS) -> dict[int, int]:
    """Whole numbers of key slots per noise value, summing to `slots`, with an exactly
    zero total (so the noise over all 256 cell keys has mean exactly 0)."""
    ks = sorted(dist)
    exact = {k: dist[k] * slots for k in ks}
    if ks[0] == -ks[-1]:
        return _quantise_symmetric(exact)
    count = {k: int(np.floor(exact[k])) for k in ks}
    by_remainder = sorted(ks, key=lambda k: exact[k] - count[k], reverse=True)
    for k in by_remainder[: slots - sum(count.values())]:
        count[k] += 1
    imbalance = sum(k * c for k, c in count.items())
    while imbalance != 0:
        # Move one slot one step towards zero imbalance, from the most over-allocated value.
        step = -1 if imbalance > 0 else 1
        movable = [k for k in ks if count[k] > 0 and (k + step) in count]
        k = max(movable, key=lambda k: count[k] - exact[k])
        count[k] -= 1
        count[k + step] += 1
        imbalance += step
    return count


def _quantise_symmetric(exact: Mapping[int, float]) -> dict[int, int]:
    """Symmetric support: round +-k together (so the mean is exactly 0), then restore the
    variance that rounding thinned out of the tails with symmetric moves."""
    d = max(exact)
    slots = round(sum(exact.values()))
    half = {k: round(exact[k]) for k in range(1, d + 1)}
    half[0] = 0
    half[0] = slots - 2 * sum(half.values())
    while half[0] < 0:  # rounding overshot: take from the largest outer value
        k = max(range(1, d + 1), key=lambda k: half[k] - exact[k])
        half[k] -= 1
        half[0] += 2
    target = sum(k * k * exact[k] for k in exact)

    def sumsq(h: Mapping[int, int]) -> int:
        return 2 * sum(k * k * h[k] for k in range(1, d + 1))

    for _ in range(slots):
        gap = abs(sumsq(half) - target)
        best: tuple[float, int, int] | None = None
        for k in range(d):
            need = 2 if k == 0 else 1  # k=0 sends one slot to +1 and one to -1
            for src, dst in ((k, k + 1), (k + 1, k)):
                if half[src] < (need if src == 0 else 1):
                    continue
                trial = dict(half)
                moved = 2 if (src == 0 or dst == 0) else 1
                trial[src] -= moved if src == 0 else 1
                trial[dst] += moved if dst == 0 else 1
                new_gap = abs(sumsq(trial) - target)
                if new_gap < gap - 1e-9 and (best is None or new_gap < best[0]):
                    best = (new_gap, src, dst)
        if best is None:
            break
        _, src, dst = best
        half[src] -= 2 if src == 0 else 1
        half[dst] += 2 if dst == 0 else 1
    return {**{-k: half[k] for k in range(d, 0, -1)}, **{k: half[k] for k in range(d + 1)}}


@dataclass(frozen=True, eq=False)
class PerturbationTable:
    """noise[row, cell_key] for rows 0..PTABLE_ROWS-1; see `row_for`."""

    max_noise: int
    variance: float
    noise: np.ndarray  # (PTABLE_ROWS, 256) int8
    fingerprint: str  # identifies the table without revealing anything about it

    @classmethod
    def generate(cls, secret: bytes, *, max_noise: int, variance: float) -> PerturbationTable:
        """Deterministic given the secret and the parameters (stdlib hashing only, so
        the table does not change with numpy or polars versions)."""
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"ptable secret must be at least {MIN_SECRET_BYTES} bytes")
        params = f"|D={max_noise}|V={variance!r}|rows={PTABLE_ROWS}".encode()
        seed = hmac.digest(secret, _PTABLE_DOMAIN + params, "sha256")
        fingerprint = hmac.digest(secret, _FINGERPRINT_DOMAIN + params, "sha256")[:6].hex()
        table = np.zeros((PTABLE_ROWS, KEY_MODULUS), dtype=np.int8)
        slots_by_support: dict[int, np.ndarray] = {}
        for row in range(1, PTABLE_ROWS):
            support_key = min(row, max_noise)  # rows >= D share one distribution
            if support_key not in slots_by_support:
                counts = _quantise(noise_distribution(row, max_noise, variance))
                values = np.repeat(
                    np.array(sorted(counts), dtype=np.int8),
                    [counts[k] for k in sorted(counts)],
                )
                if len(np.unique(values)) < 2:
                    raise ValueError(
                        f"variance {variance} is too small: count {row} would never be perturbed"
                    )
                slots_by_support[support_key] = values
            stream = hashlib.shake_256(seed + row.to_bytes(4, "big")).digest(8 * KEY_MODULUS)
            order = np.argsort(np.frombuffer(stream, dtype=">u8"), kind="stable")
            table[row, order] = slots_by_support[support_key]
        table.setflags(write=False)
        return cls(max_noise, float(variance), table, fingerprint)

    @staticmethod
    def row_for(counts: np.ndarray) -> np.ndarray:
        half = PTABLE_ROWS // 2
        counts = np.asarray(counts, dtype=np.int64)
        return np.where(counts < PTABLE_ROWS, counts, half + (counts - half) % half)

    def noise_for(self, counts: np.ndarray, ckeys: np.ndarray) -> np.ndarray:
        counts = np.asarray(counts, dtype=np.int64)
        ckeys = np.asarray(ckeys, dtype=np.int64)
        if counts.size and (counts.min() < 0 or ckeys.min() < 0 or ckeys.max() >= KEY_MODULUS):
            raise ValueError("counts must be >= 0 and cell keys in 0..255")
        return self.noise[self.row_for(counts), ckeys].astype(np.int64)

    def perturb(self, counts: np.ndarray, ckeys: np.ndarray) -> np.ndarray:
        """Perturbed counts: true count + noise(count, cell key). Zeros stay 0."""
        counts = np.asarray(counts, dtype=np.int64)
        return counts + self.noise_for(counts, ckeys)

    def transition(self, count: int) -> dict[int, float]:
        """Probability of each noise value for a true count, over uniform cell keys."""
        row = self.noise[int(self.row_for(np.array([count]))[0])]
        values, freq = np.unique(row, return_counts=True)
        return {int(v): float(f) / KEY_MODULUS for v, f in zip(values, freq, strict=True)}


_PTABLES: dict[tuple[str, int, float], PerturbationTable] = {}


def ptable_for(max_noise: int, variance: float, secret: bytes | None = None) -> PerturbationTable:
    """The ptable for these parameters, from `secret` or else `load_sdc_secret()`;
    generated once per process (the cache is keyed by a hash, never the secret)."""
    secret = load_sdc_secret() if secret is None else secret
    seed = derive_key(secret, "ptable")
    key = (hashlib.sha256(seed).hexdigest(), max_noise, float(variance))
    if key not in _PTABLES:
        _PTABLES[key] = PerturbationTable.generate(seed, max_noise=max_noise, variance=variance)
    return _PTABLES[key]


def protect_counts(
    counts: np.ndarray, ckeys: np.ndarray, ptable: PerturbationTable, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """The published value of each cell and whether it is suppressed.

    True zeros stay 0 (not suppressed: ONS convention). Any other cell whose perturbed
    count is below `threshold` is suppressed; its value is returned as -1 so that a
    suppressed cell can never be mistaken for a number."""
    counts = np.asarray(counts, dtype=np.int64)
    perturbed = ptable.perturb(counts, ckeys)
    suppressed = (counts > 0) & (perturbed < threshold)
    return np.where(suppressed, -1, perturbed), suppressed
