"""The noise real extracts carry, at declared rates that the tests measure.

Every rate here is a promise: tests/test_synthetic_noise.py measures each one
in the generated extracts (against the ground truth) and fails if the
measured rate strays from the declared one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Will", "Bill", "Billy", "Liam"),
    "Robert": ("Rob", "Bob", "Bobby", "Robbie"),
    "Richard": ("Rich", "Rick", "Dick", "Richie"),
    "James": ("Jim", "Jimmy", "Jamie"),
    "Thomas": ("Tom", "Tommy"),
    "Michael": ("Mike", "Mick", "Mikey"),
    "Christopher": ("Chris", "Kit"),
    "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",),
    "Anthony": ("Tony", "Ant"),
    "Joseph": ("Joe", "Joey"),
    "Benjamin": ("Ben", "Benji"),
    "Samuel": ("Sam", "Sammy"),
    "Alexander": ("Alex", "Sandy", "Xander"),
    "Nicholas": ("Nick", "Nicky"),
    "Jonathan": ("Jon", "Jonny"),
    "David": ("Dave", "Davey"),
    "Edward": ("Ed", "Eddie", "Ted"),
    "Andrew": ("Andy", "Drew"),
    "Stephen": ("Steve", "Steven"),
    "Steven": ("Steve", "Stephen"),
    "Peter": ("Pete",),
    "Timothy": ("Tim", "Timmy"),
    "Kenneth": ("Ken", "Kenny"),
    "Gerald": ("Gerry",),
    "Henry": ("Harry", "Hal"),
    "Frederick": ("Fred", "Freddie"),
    "Charles": ("Charlie", "Chas"),
    "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty", "Eliza"),
    "Margaret": ("Maggie", "Meg", "Peggy"),
    "Katherine": ("Kate", "Kath", "Katie", "Kathryn", "Catherine"),
    "Catherine": ("Cath", "Cathy", "Kate", "Katherine"),
    "Jennifer": ("Jen", "Jenny"),
    "Rebecca": ("Becky", "Becca"),
    "Victoria": ("Vicky", "Tori"),
    "Susan": ("Sue", "Suzy"),
    "Deborah": ("Debbie", "Deb"),
    "Patricia": ("Pat", "Trish", "Patty"),
    "Alexandra": ("Alex", "Lexi", "Sandra"),
    "Samantha": ("Sam", "Sammy"),
    "Jessica": ("Jess", "Jessie"),
    "Abigail": ("Abbie", "Abby"),
    "Charlotte": ("Lottie", "Charlie"),
    "Eleanor": ("Ellie", "Nell"),
    "Josephine": ("Jo", "Josie"),
    "Christine": ("Chris", "Chrissie"),
    "Amanda": ("Mandy",),
    "Jacqueline": ("Jackie",),
    "Natalie": ("Nat",),
    "Mohammed": ("Muhammad", "Mohammad", "Mohamed"),
    "Muhammad": ("Mohammed", "Mohammad"),
    "Sean": ("Shaun", "Shawn"),
    "Zoe": ("Zoë",),
    "Chloe": ("Chloë",),
    "Jose": ("José",),
    "Rene": ("René",),
}
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class NoiseRates:
    """Rates per record (or per present value) at which each kind of noise is applied."""

    name_typo: float = 0.02  # per name field
    nickname: float = 0.05  # forenames that have a known variant
    upper_case_names: float = 0.08
    dob_transposed: float = 0.01  # day and month swapped, where both are <= 12
    dob_missing: float = 0.03  # only where the contract lets DOB be blank
    nhs_invalid: float = 0.01  # a digit changed, checksum then fails
    ni_invalid: float = 0.01
    upn_missing: float = 0.02
    upn_invalid: float = 0.01
    postcode_format: float = 0.25  # lower case, no space, or extra spaces
    postcode_missing: float = 0.02
    stale_address: float = 0.15  # the address before the last move
    duplicate: float = 0.02  # records repeated within a source
    nhs_missing: dict[str, float] = field(
        default_factory=lambda: {
            "early_help": 0.55,
            "social_care": 0.08,
            "adult_social_care": 0.04,
            "health": 0.0,
            "objections": 0.6,
        }
    )
    # Share of dates written in the contract's non-canonical layouts.
    mixed_dates: dict[str, float] = field(
        default_factory=lambda: {"police": 0.5, "housing": 0.35, "front_door": 0.2}
    )


DEFAULT_NOISE = NoiseRates()


def typo(word: str, r: np.random.Generator) -> str:
    """One keyboard slip: drop, swap, double or substitute a letter."""
    if len(word) < 3:
        return word + word[-1:]
    i = int(r.integers(1, len(word) - 1))
    kind = int(r.integers(0, 4))
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    c = _KEYBOARD[int(r.integers(0, len(_KEYBOARD)))]
    if c == word[i].lower():
        c = "e" if c != "e" else "a"
    return word[:i] + c + word[i + 1 :]


def messy_postcode(pc: str, r: np.random.Generator) -> str:
    kind = int(r.integers(0, 3))
    if kind == 0:
        return pc.lower()
    if kind == 1:
        return pc.replace(" ", "")
    return "  ".join(pc.split(" ")) + " "


def misspell_names(
    forename: np.ndarray, surname: np.ndarray, rates: NoiseRates, rng: np.random.Generator
) -> None:
    """In place: nicknames and variants of forenames, then keyboard slips in both names,
    at the extract's rates (each extract that records names draws these in this order)."""
    n = len(forename)
    for i in np.flatnonzero(rng.random(n) < rates.nickname):
        variants = NICKNAMES.get(forename[i])
        if variants:
            forename[i] = variants[int(rng.integers(0, len(variants)))]
    for arr in (forename, surname):
        for i in np.flatnonzero(rng.random(n) < rates.name_typo):
            arr[i] = typo(arr[i], rng)
