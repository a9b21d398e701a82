"""Checksums and formats of the national identifiers the sources carry.

Shared by the synthetic generator (to make valid and deliberately invalid
identifiers) and the ingest validator (to tell them apart).
"""

from __future__ import annotations

import re

import numpy as np

_NHS_WEIGHTS = np.arange(10, 1, -1)  # 10..2 applied to the first nine digits


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus 11 check digit for an NHS number; None where 10 (never issued)."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(value: str | None) -> bool:
    if value is None:
        return False
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{10}", digits):
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


def nhs_check_digits_vectorised(first_nine: np.ndarray) -> np.ndarray:
    """Check digits for an (n, 9) int array; -1 where the check would be 10."""
    total = (first_nine * _NHS_WEIGHTS).sum(axis=1)
    check = 11 - total % 11
    check = np.where(check == 11, 0, check)
    return np.where(check == 10, -1, check)


# National Insurance numbers: two prefix letters, six digits, suffix A-D.
# D, F, I, Q, U, V never appear in the prefix; O never second; some pairs unused.
NI_PREFIX_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NI_PREFIX_SECOND = "ABCEGHJKLMNPRSTWXYZ"
NI_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
_NI_RE = re.compile(r"^([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z])(\d{6})([A-D])$")


def is_valid_ni_number(value: str | None) -> bool:
    if value is None:
        return False
    v = re.sub(r"\s", "", value).upper()
    m = _NI_RE.match(v)
    return m is not None and (m.group(1) + m.group(2)) not in NI_BAD_PREFIXES


# Unique Pupil Numbers: a check letter then 12 characters (LA code, school,
# year, serial). The check letter is the weighted sum of characters 2-13
# (weights 2..13) modulo 23, mapped onto the letters below.
UPN_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def upn_check_letter(body12: str) -> str:
    total = 0
    for weight, ch in enumerate(body12, start=2):
        value = int(ch) if ch.isdigit() else UPN_CHECK_LETTERS.index(ch)
        total += value * weight
    return UPN_CHECK_LETTERS[total % 23]


def is_valid_upn(value: str | None) -> bool:
    if value is None:
        return False
    v = value.strip().upper()
    if not re.fullmatch(r"[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z]", v):
        return False
    return upn_check_letter(v[1:]) == v[0]
