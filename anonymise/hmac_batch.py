"""HMAC-SHA256 of many messages under one key, fast and bit-identical to `hmac.digest`.

Publishing hashes every counted unit twice (its ledger hash, then its record key): over
a million HMACs at 300,000 people. `hmac.digest` sets the key up again for each message
(OpenSSL 3 also looks the algorithm up each time); here the key's inner and outer pads
are hashed once and each message starts from copies of those two states (RFC 2104), which
is the same function, computed in about a third of the time.

Standard library only, so that `python -I -S` can run this file as the second process of
`digests` (the key arrives on stdin, never in argv, the environment or a log).

Protocol (stdin, native byte order): key length (u32), message count (u32), key, then
`count` message lengths (u32 each) and the messages concatenated. Reply (stdout): the
`count` 32-byte digests, concatenated.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from typing import Any

DIGEST_BYTES = 32
_BLOCK = 64  # SHA-256's block size


def _sha256_constructor() -> Callable[..., Any]:
    """The interpreter's own SHA-256 when it has one: copying its state is cheaper than
    copying an OpenSSL context (1.6 against 2.0 microseconds a message, measured). The
    digests are SHA-256 either way."""
    for module in ("_sha2", "_sha256"):  # 3.12+, 3.11
        try:
            return __import__(module).sha256
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


def hmac_sha256_many(key: bytes, messages: Sequence[bytes | memoryview]) -> bytes:
    """HMAC-SHA256(key, m) for each message, concatenated (32 bytes each)."""
    sha256 = _sha256_constructor()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(bytes(b ^ 0x36 for b in key))
    outer = sha256(bytes(b ^ 0x5C for b in key))
    new_inner, new_outer = inner.copy, outer.copy
    out: list[bytes] = []
    append = out.append
    for m in messages:
        h = new_inner()
        h.update(m)
        o = new_outer()
        o.update(h.digest())
        append(o.digest())
    return b"".join(out)


def encode_request(key: bytes, lengths: bytes, payload: bytes, count: int) -> list[bytes]:
    """The worker's input: header, key, lengths (u32 each), payload."""
    return [struct.pack("=II", len(key), count), key, lengths, payload]


def _read_exactly(stream: Any, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise EOFError(f"expected {n} bytes on stdin, got {got}")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _serve() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    key_len, count = struct.unpack("=II", _read_exactly(stdin, 8))
    key = _read_exactly(stdin, key_len)
    lengths = array("I")
    lengths.frombytes(_read_exactly(stdin, 4 * count))
    view = memoryview(_read_exactly(stdin, sum(lengths)))
    messages, at = [], 0
    for n in lengths:
        messages.append(view[at : at + n])
        at += n
    stdout.write(hmac_sha256_many(key, messages))
    stdout.flush()


if __name__ == "__main__":
    _serve()
