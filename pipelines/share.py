"""The national evaluation share: identifiers and attributes in separate files.

For the Supporting Families national impact study a council sends identifiers (names,
date of birth, sex, address history, NI and NHS numbers) to a trusted third party that
links them to other departments' data, and attributes (family, needs, outcomes, dates)
to the analysts under a key only. Whoever links sees only identifiers; whoever analyses
sees only a key and content. This module builds the two frames (pure); the CLI
(`portal share evaluation`) encrypts each for its own recipient, writes a manifest and
records the share.

What holds, and the tests prove:
- the identifiers frame has only identifier fields and the share key; the attributes
  frame has only attribute fields and share keys (layout validation refuses a field in
  the wrong file, `ShareLayout`);
- the share key is HMAC-SHA256 of the person's zone B pseudonym under a key derived from
  the master key and this share's random id, so it joins the two files of this share
  and nothing else: not a research extract (keyed by project id) and not another share;
- people whose objection or request covers this use are in neither file;
- the layout of both files is data (`pipelines/shares/<programme>.toml`), so the
  department's specification can be followed exactly without a code change.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from anonymise.pseudonymise import MasterKey, pseudonymise_series
from pipelines.zone_b import ZONE_B_PROJECT, modes, person_anchors
from registry.codes import NEEDS

LAYOUT_DIR = Path(__file__).parent / "shares"
PROGRAMMES = ("supporting-families",)
SHARE_ID_PATTERN = re.compile(r"^shr-[0-9a-f]{12}$")

IDENTIFIER_FIELDS = (
    "share_key", "forename", "surname", "dob", "sex", "ni_number", "nhs_number",
    "address_line1", "postcode", "address_first_seen", "address_last_seen",
)  # fmt: skip
ATTRIBUTE_FIELDS = (
    "share_key", "share_family_key", "share_episode_key", "role", "age_at_start",
    "episode_start", "assessment_date", "plan_start", "episode_end", "closure_reason",
    "needs_count", "sustained_progress",
    *(f"need_{n}" for n in NEEDS),
    *(f"outcome_{n}" for n in NEEDS),
)  # fmt: skip
DATE_FIELDS = {
    "dob", "address_first_seen", "address_last_seen", "episode_start", "assessment_date",
    "plan_start", "episode_end",
}  # fmt: skip
# Fields that identify a person directly: never in the attributes file, whatever the
# layout says. (share_key is the one column both files carry.)
DIRECT = set(IDENTIFIER_FIELDS) - {"share_key"}


class ShareError(ValueError):
    """The share cannot be made; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("share not made:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class LayoutColumn:
    name: str  # the header in the file
    field: str  # what goes in it
    format: str | None = None  # strftime layout for a date


@dataclass(frozen=True)
class ShareLayout:
    programme: str
    title: str
    lawful_basis: str
    version: int
    identifiers: tuple[LayoutColumn, ...]
    attributes: tuple[LayoutColumn, ...]

    @property
    def ref(self) -> str:
        return f"{self.programme}@{self.version}"


def load_layout(programme: str, path: Path | None = None) -> ShareLayout:
    """The programme's layout file, validated (every problem reported together)."""
    if programme not in PROGRAMMES and path is None:
        raise ShareError([f"unknown programme {programme!r}; known: {', '.join(PROGRAMMES)}"])
    source = path or LAYOUT_DIR / f"{programme}.toml"
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ShareError([f"{source}: cannot read the layout: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ShareError([f"{source}: not valid TOML: {exc}"]) from None
    return parse_layout(raw, source=str(source))


def parse_layout(raw: Mapping[str, object], *, source: str = "<layout>") -> ShareLayout:
    problems: list[str] = []
    unknown = set(raw) - {"share", "identifiers", "attributes"}
    problems += [f"{source}: unknown section [{s}]" for s in sorted(unknown)]
    share = raw.get("share") if isinstance(raw.get("share"), Mapping) else {}
    assert isinstance(share, Mapping)
    for key in ("programme", "title", "lawful_basis"):
        if not isinstance(share.get(key), str) or not str(share.get(key)).strip():
            problems.append(f"{source}: share.{key} must be non-empty text")
    version = share.get("version")
    if not isinstance(version, int) or version < 1:
        problems.append(f"{source}: share.version must be a whole number >= 1")

    def columns(section: str, allowed: tuple[str, ...]) -> tuple[LayoutColumn, ...]:
        body = raw.get(section)
        if not isinstance(body, Mapping) or not isinstance(body.get("columns"), list):
            problems.append(f"{source}: [{section}] needs a list `columns`")
            return ()
        out = []
        for i, c in enumerate(body["columns"], start=1):
            where = f"{source}: {section} column {i}"
            if not isinstance(c, Mapping):
                problems.append(f"{where} must be a table")
                continue
            extra = set(c) - {"name", "field", "format"}
            if extra:
                problems.append(f"{where}: unknown key(s) {sorted(extra)}")
            name, fld, fmt = c.get("name"), c.get("field"), c.get("format")
            if not isinstance(name, str) or not name.strip():
                problems.append(f"{where}: `name` must be non-empty text")
                continue
            if fld not in allowed:
                other = "identifiers" if section == "attributes" else "attributes"
                if section == "attributes" and fld in DIRECT:
                    problems.append(
                        f"{where} ({name}): {fld!r} identifies a person and may never be in "
                        "the attributes file"
                    )
                elif isinstance(fld, str) and fld in (
                    ATTRIBUTE_FIELDS if section == "identifiers" else IDENTIFIER_FIELDS
                ):
                    problems.append(
                        f"{where} ({name}): {fld!r} belongs in the {other} file, not this one"
                    )
                else:
                    problems.append(f"{where} ({name}): unknown field {fld!r}")
                continue
            if fmt is not None and (not isinstance(fmt, str) or fld not in DATE_FIELDS):
                problems.append(f"{where} ({name}): `format` applies only to date fields")
                continue
            out.append(LayoutColumn(name.strip(), str(fld), fmt))
        names = [c.name for c in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"{source}: [{section}] repeats column name(s) {dupes}")
        if "share_key" not in [c.field for c in out]:
            problems.append(f"{source}: [{section}] must carry the share key (field share_key)")
        return tuple(out)

    ids = columns("identifiers", IDENTIFIER_FIELDS)
    attrs = columns("attributes", ATTRIBUTE_FIELDS)
    if problems:
        raise ShareError(problems)
    return ShareLayout(
        programme=str(share["programme"]),
        title=str(share["title"]),
        lawful_basis=str(share["lawful_basis"]),
        version=int(version),  # type: ignore[arg-type]
        identifiers=ids,
        attributes=attrs,
    )


def financial_year_bounds(period: str) -> tuple[date, date]:
    """'2024/25' -> (2024-04-01, 2025-03-31); anything else is a clear error."""
    m = re.fullmatch(r"(\d{4})/(\d{2})", period.strip())
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ShareError([f"--period must be a financial year like 2024/25, got {period!r}"])
    start = int(m.group(1))
    return date(start, 4, 1), date(start + 1, 3, 31)


def share_key(key: MasterKey, share_id: str) -> bytes:
    """The key of one share: derived from the master key and the share's random id, so it
    can match no research project's key (those derive from project ids) and no other
    share's."""
    if not SHARE_ID_PATTERN.match(share_id):
        raise ShareError([f"a share id looks like shr-<12 hex>, got {share_id!r}"])
    return key.project_key(f"evaluation-share:{share_id}").secret


@dataclass(frozen=True)
class ShareFrames:
    identifiers: pl.DataFrame
    attributes: pl.DataFrame
    people: int
    families: int
    excluded_people: int  # people in scope whose objection or request covers this use
    excluded_ids: pl.Series  # their zone B pseudonyms (for the protected count only)


def zone_b_ids(linked: pl.DataFrame, key: MasterKey) -> pl.DataFrame:
    """person_key -> zone B person_id, computed exactly as `build_zone_b` does."""
    zkey = key.project_key(ZONE_B_PROJECT)
    anchors = person_anchors(linked)
    return anchors.with_columns(
        pseudonymise_series(anchors["anchor"], zkey, prefix="p").alias("person_id")
    ).select("person_key", "person_id")


def build_share(
    linked: pl.DataFrame,
    persons: pl.DataFrame,
    early_help: pl.DataFrame,
    outcomes: pl.DataFrame,
    *,
    key: MasterKey,
    share_id: str,
    period: str,
    layout: ShareLayout,
    excluded: pl.Series,
) -> ShareFrames:
    """Pure: zone A linked records, zone B persons and Early Help events, the per-need
    outcomes (`pipelines.derive.need_outcomes`) and the people excluded for this use
    (zone B person ids) -> the two frames, laid out as `layout` says.

    In scope: every member of a family with an Early Help episode open at any time in
    the financial year `period`."""
    start, end = financial_year_bounds(period)
    skey = share_key(key, share_id)
    ids = zone_b_ids(linked, key)
    eps = early_help.filter(
        (pl.col("referral_date") <= end)
        & (pl.col("closure_date").is_null() | (pl.col("closure_date") >= start))
    )
    in_scope = eps.select("person_id").unique()
    excluded_frame = pl.DataFrame({"person_id": excluded}, schema={"person_id": pl.String})
    out = in_scope.join(excluded_frame, on="person_id", how="semi")
    keep = in_scope.join(out, on="person_id", how="anti")
    eps = eps.join(keep, on="person_id", how="semi")

    # --- attributes: one row per person per family episode -------------------------
    born = persons.select(
        "person_id",
        (pl.col("birth_month") + "-15").str.to_date("%Y-%m-%d", strict=False).alias("_born"),
    )
    epi = (
        eps.group_by("family_id", "episode_id", "person_id")
        .agg(
            pl.col("referral_date").min().alias("episode_start"),
            pl.col("assessment_date").min(),
            pl.col("plan_start").min(),
            pl.col("closure_date").max().alias("episode_end"),
            pl.col("closure_reason").drop_nulls().first(),
            pl.col("needs").drop_nulls().first(),
        )
        .join(born, on="person_id", how="left")
        .with_columns(
            ((pl.col("episode_start") - pl.col("_born")).dt.total_days() / 365.25)
            .floor()
            .cast(pl.Int64)
            .alias("age_at_start")
        )
        .with_columns(
            pl.when(pl.col("age_at_start") < 18)
            .then(pl.lit("child"))
            .when(pl.col("age_at_start").is_not_null())
            .then(pl.lit("adult"))
            .otherwise(pl.lit("not known"))
            .alias("role")
        )
    )
    need_list = pl.col("needs").fill_null("").str.split(";")
    epi = epi.with_columns(
        *(
            pl.when(need_list.list.contains(n))
            .then(pl.lit("Y"))
            .otherwise(pl.lit("N"))
            .alias(f"need_{n}")
            for n in NEEDS
        ),
        need_list.list.eval(pl.element().filter(pl.element() != ""))
        .list.len()
        .alias("needs_count"),
    )
    judged = outcomes.group_by("episode_id").agg(
        pl.col("positive").all().alias("_all"),
        *(pl.col("positive").filter(pl.col("need") == n).first().alias(f"_o_{n}") for n in NEEDS),
    )
    epi = epi.join(judged, on="episode_id", how="left").with_columns(
        pl.when(pl.col("_all").is_null())
        .then(pl.lit(""))
        .when(pl.col("_all"))
        .then(pl.lit("Y"))
        .otherwise(pl.lit("N"))
        .alias("sustained_progress"),
        *(
            pl.when(pl.col(f"_o_{n}").is_null())
            .then(pl.lit(""))
            .when(pl.col(f"_o_{n}"))
            .then(pl.lit("Y"))
            .otherwise(pl.lit("N"))
            .alias(f"outcome_{n}")
            for n in NEEDS
        ),
    )
    epi = epi.with_columns(
        pseudonymise_series(epi["person_id"], skey, prefix="S").alias("share_key"),
        pseudonymise_series(epi["family_id"], skey, prefix="SF").alias("share_family_key"),
        pseudonymise_series(epi["episode_id"], skey, prefix="SE").alias("share_episode_key"),
    ).sort("share_family_key", "episode_start", "share_episode_key", "share_key")

    # --- identifiers: one row per person per address --------------------------------
    people = linked.join(ids, on="person_key").join(keep, on="person_id", how="semi")
    who = modes(
        people,
        "person_id",
        {c: c for c in ("forename", "surname", "dob", "sex", "ni_number", "nhs_number")},
    )
    addresses = (
        people.filter(pl.col("postcode").is_not_null())
        .group_by("person_id", "address_line1", "postcode")
        .agg(
            pl.col("event_date").min().alias("address_first_seen"),
            pl.col("event_date").max().alias("address_last_seen"),
        )
    )
    idents = who.join(addresses, on="person_id", how="left")
    idents = idents.with_columns(
        pseudonymise_series(idents["person_id"], skey, prefix="S").alias("share_key")
    ).sort("share_key", "address_first_seen", "address_line1", "postcode", nulls_last=True)
    return ShareFrames(
        identifiers=_lay_out(idents, layout.identifiers),
        attributes=_lay_out(epi, layout.attributes),
        people=keep.height,
        families=eps["family_id"].n_unique(),
        excluded_people=out.height,
        excluded_ids=out["person_id"],
    )


def _lay_out(frame: pl.DataFrame, columns: tuple[LayoutColumn, ...]) -> pl.DataFrame:
    """Exactly the layout's columns, in its order, under its names; dates formatted;
    every value text, and a missing value an empty cell."""
    exprs = []
    for c in columns:
        col = pl.col(c.field)
        if c.field in DATE_FIELDS:
            col = col.dt.strftime(c.format or "%Y-%m-%d")
        exprs.append(col.cast(pl.String).fill_null("").alias(c.name))
    return frame.select(exprs)
