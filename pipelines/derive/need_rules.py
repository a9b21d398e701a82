"""The Supporting Families need-to-outcome rules, held as data (`need_outcomes.toml` beside it).

`load_need_rules` reads and validates the file, gathering every problem (unknown keys,
needs, sources, columns or codes, wrong types) into one `NeedRulesError` that names the
file and the rule; `warning_frames` turns the rules into the (episode, need) pairs whose
outcome was not positive, for `pipelines.derive.need_outcomes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.contracts import CONTRACTS, Kind
from registry.codes import NEEDS
from registry.errors import RulesFileError

NEED_RULES_PATH = Path(__file__).parent / "need_outcomes.toml"
FLAG_CODES = ("Y", "N")


class NeedRulesError(RulesFileError):
    """The need-to-outcome rules file is invalid; every problem is listed."""


@dataclass(frozen=True)
class EventRule:
    need: str
    source: str
    date: str | None
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unless: tuple[tuple[str, tuple[str, ...]], ...] = ()
    date_from_year: tuple[str, int, int] | None = None  # (text column, month, day)


@dataclass(frozen=True)
class RunningRule:
    need: str
    source: str
    start: str
    end: str


@dataclass(frozen=True)
class SchoolYearRule:
    need: str
    source: str
    year: str
    within_days: int
    missed: str
    possible: str
    max_absence: float
    suspensions: str
    max_suspensions: int


@dataclass(frozen=True)
class NeedRules:
    sustain_days: int
    events: tuple[EventRule, ...]
    still_running: tuple[RunningRule, ...]
    school_years: tuple[SchoolYearRule, ...]


_EVENT_KEYS = {"need", "source", "date", "where", "unless", "date_from_year"}
_RUNNING_KEYS = {"need", "source", "start", "end"}
_SCHOOL_KEYS = {
    "need", "source", "year", "within_days", "missed", "possible", "max_absence",
    "suspensions", "max_suspensions",
}  # fmt: skip
_TOP_KEYS = {"version", "sustain_days", "event", "still_running", "school_year"}


class _Checker:
    """Gathers problems while reading one rule."""

    def __init__(self, problems: list[str], where: str, raw: Mapping[str, Any]) -> None:
        self.problems, self.where, self.raw = problems, where, raw

    def fail(self, msg: str) -> None:
        self.problems.append(f"{self.where}: {msg}")

    def keys(self, allowed: set[str], required: set[str]) -> None:
        for k in sorted(set(self.raw) - allowed):
            self.fail(f"unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")
        for k in sorted(required - set(self.raw)):
            self.fail(f"missing key {k!r}")

    def need(self) -> str:
        need = self.raw.get("need")
        if need is not None and need not in NEEDS:
            self.fail(f"unknown need {need!r} (needs: {', '.join(NEEDS)})")
        return str(need)

    def source(self) -> str:
        source = self.raw.get("source")
        if source is not None and source not in CONTRACTS:
            self.fail(f"unknown source {source!r}")
        return str(source)

    def column(self, key: str, kinds: tuple[Kind, ...], name: Any = None) -> str:
        col = self.raw.get(key) if name is None else name
        if col is None:
            return ""
        contract = CONTRACTS.get(str(self.raw.get("source")))
        if contract is None:
            return str(col)
        by_name = {c.name: c for c in contract.columns}
        if col not in by_name:
            self.fail(f"{key}: source {contract.name!r} has no column {col!r}")
        elif by_name[col].kind not in kinds:
            want = " or ".join(k.value for k in kinds)
            self.fail(f"{key}: column {col!r} is {by_name[col].kind.value}, not {want}")
        return str(col)

    def codes(self, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        table = self.raw.get(key, {})
        if not isinstance(table, Mapping):
            self.fail(f"{key} must be a table of column = [codes]")
            return ()
        contract = CONTRACTS.get(str(self.raw.get("source")))
        out = []
        for col, values in table.items():
            if not (
                isinstance(values, list) and values and all(isinstance(v, str) for v in values)
            ):
                self.fail(f"{key}.{col} must be a non-empty list of codes")
                continue
            self.column(f"{key}.{col}", (Kind.CODE, Kind.FLAG), col)
            spec = {c.name: c for c in contract.columns}.get(col) if contract else None
            allowed = (
                FLAG_CODES if spec and spec.kind is Kind.FLAG else (spec.codes if spec else ())
            )
            bad = [v for v in values if allowed and v not in allowed]
            if bad:
                self.fail(f"{key}.{col}: unknown code(s) {bad} (codes: {', '.join(allowed)})")
            out.append((str(col), tuple(values)))
        return tuple(out)

    def number(self, key: str, kind: type, minimum: float = 0) -> Any:
        value = self.raw.get(key)
        if value is None:
            return kind(0)
        ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
        if isinstance(value, bool) or not ok or value < minimum:
            self.fail(f"{key} must be a {kind.__name__} of at least {minimum}, got {value!r}")
            return kind(0)
        return kind(value)


def _event(c: _Checker) -> EventRule:
    c.keys(_EVENT_KEYS, {"need", "source"})
    need, source = c.need(), c.source()
    date = c.column("date", (Kind.DATE,)) or None
    by_year = c.raw.get("date_from_year")
    from_year: tuple[str, int, int] | None = None
    if (date is None) == (by_year is None):
        c.fail("give exactly one of 'date' and 'date_from_year'")
    if by_year is not None:
        if not (isinstance(by_year, Mapping) and set(by_year) == {"column", "month", "day"}):
            c.fail("date_from_year must be { column, month, day }")
        else:
            col = c.column("date_from_year.column", (Kind.TEXT,), by_year["column"])
            month, day = by_year["month"], by_year["day"]
            if not (isinstance(month, int) and 1 <= month <= 12 and isinstance(day, int)):
                c.fail("date_from_year: month must be 1-12 and day a whole number")
            elif not 1 <= day <= 28:
                c.fail("date_from_year: day must be 1-28 (a day every month has)")
            from_year = (col, month, day)
    return EventRule(need, source, date, c.codes("where"), c.codes("unless"), from_year)


def _running(c: _Checker) -> RunningRule:
    c.keys(_RUNNING_KEYS, _RUNNING_KEYS)
    need, source = c.need(), c.source()
    return RunningRule(need, source, c.column("start", (Kind.DATE,)), c.column("end", (Kind.DATE,)))


def _school_year(c: _Checker) -> SchoolYearRule:
    c.keys(_SCHOOL_KEYS, _SCHOOL_KEYS)
    need, source = c.need(), c.source()
    return SchoolYearRule(
        need,
        source,
        c.column("year", (Kind.TEXT,)),
        c.number("within_days", int, 1),
        c.column("missed", (Kind.INT,)),
        c.column("possible", (Kind.INT,)),
        c.number("max_absence", float, 0),
        c.column("suspensions", (Kind.INT,)),
        c.number("max_suspensions", int, 0),
    )


def parse_need_rules(raw: Mapping[str, Any], path: Path = NEED_RULES_PATH) -> NeedRules:
    """Validated rules from a parsed TOML document; NeedRulesError lists every problem."""
    problems: list[str] = []
    for k in sorted(set(raw) - _TOP_KEYS):
        problems.append(f"unknown key {k!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if raw.get("version") != 1:
        problems.append(f"version must be 1, got {raw.get('version')!r}")
    sustain = raw.get("sustain_days")
    if isinstance(sustain, bool) or not isinstance(sustain, int) or sustain < 1:
        problems.append(f"sustain_days must be a whole number of days, got {sustain!r}")

    def rules(key: str, build: Callable[[_Checker], Any]) -> tuple[Any, ...]:
        items = raw.get(key, [])
        if not isinstance(items, list):
            problems.append(f"{key} must be an array of tables ([[{key}]])")
            return ()
        out = []
        for i, item in enumerate(items, 1):
            where = f"[[{key}]] #{i}" + (
                f" ({item.get('need')})" if isinstance(item, Mapping) else ""
            )
            if not isinstance(item, Mapping):
                problems.append(f"{where}: must be a table")
                continue
            out.append(build(_Checker(problems, where, item)))
        return tuple(out)

    rules_ = NeedRules(
        sustain if isinstance(sustain, int) else 0,
        rules("event", _event),
        rules("still_running", _running),
        rules("school_year", _school_year),
    )
    covered = {
        r.need
        for group in (rules_.events, rules_.still_running, rules_.school_years)
        for r in group
    }
    for need in NEEDS:
        if need not in covered:
            problems.append(f"need {need!r} has no rule, so its outcome would always be positive")
    if problems:
        raise NeedRulesError(path, problems)
    return rules_


@lru_cache(maxsize=4)
def load_need_rules(path: Path = NEED_RULES_PATH) -> NeedRules:
    return parse_need_rules(NeedRulesError.read_toml(path), path)


def _all(conds: list[pl.Expr]) -> pl.Expr | None:
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = out & c
    return out


def warning_frames(
    rules: NeedRules, episodes: pl.DataFrame, events: Callable[[str], pl.DataFrame]
) -> list[pl.DataFrame]:
    """(episode_id, need) pairs whose outcome was not positive, one frame per rule.

    `episodes`: family_id, episode_id, closure_date, need (one row per episode and need);
    `events(source)`: that source's zone B events with family_id."""
    days = rules.sustain_days
    out: list[pl.DataFrame] = []
    for r in rules.events:
        frame = events(r.source)
        date_col = r.date
        if r.date_from_year is not None:
            col, month, day = r.date_from_year
            date_col = "_at"
            frame = frame.with_columns(
                pl.date(pl.col(col).str.slice(0, 4).cast(pl.Int32), month, day).alias(date_col)
            )
        cond = _all(
            [pl.col(c).is_in(list(v)) for c, v in r.where]
            + [~pl.col(c).is_in(list(v)) for c, v in r.unless]
        )
        ev = frame if cond is None else frame.filter(cond)
        ev = ev.select("family_id", pl.col(str(date_col)).alias("at"))
        j = episodes.filter(pl.col("need") == r.need).join(ev, on="family_id")
        hit = j.filter(
            (pl.col("at") > pl.col("closure_date"))
            & ((pl.col("at") - pl.col("closure_date")).dt.total_days() <= days)
        )
        out.append(hit.select("episode_id", "need").unique())
    for s in rules.still_running:
        out.append(
            episodes.filter(pl.col("need") == s.need)
            .join(events(s.source).select("family_id", s.start, s.end), on="family_id")
            .filter(
                (pl.col(s.start) <= pl.col("closure_date"))
                & (
                    pl.col(s.end).is_null()
                    | (pl.col(s.end) > pl.col("closure_date") + pl.duration(days=days))
                )
            )
            .select("episode_id", "need")
            .unique()
        )
    for y in rules.school_years:
        sc = events(y.source).with_columns(
            pl.date(pl.col(y.year).str.slice(0, 4).cast(pl.Int32), 9, 1).alias("year_start"),
            (pl.col(y.missed) / pl.col(y.possible)).alias("absence"),
        )
        out.append(
            episodes.filter(pl.col("need") == y.need)
            .join(sc.select("family_id", "year_start", "absence", y.suspensions), on="family_id")
            .filter(
                (pl.col("year_start") > pl.col("closure_date"))
                & ((pl.col("year_start") - pl.col("closure_date")).dt.total_days() <= y.within_days)
            )
            .filter(
                (pl.col("absence") > y.max_absence) | (pl.col(y.suspensions) > y.max_suspensions)
            )
            .select("episode_id", "need")
            .unique()
        )
    return out
