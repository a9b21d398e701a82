"""`portal risk` and `portal anonymise`: disclosure risk and optimal k-anonymisation of a file.

Each command reads one file, calls one library function, and writes or prints the
result. Neither ever prints a raw row: `risk` shows QI combinations and class sizes
only; `anonymise` writes the anonymised file and a JSON report of measures.
"""

from __future__ import annotations

import hashlib
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from anonymise.hierarchies import HierarchyError, UnknownValuesError, load_arx_hierarchies
from anonymise.lattice import LatticeTooLargeError, NoSolutionError, anonymise
from anonymise.risk import RiskReport, risk_report


class Missing(StrEnum):
    category = "category"
    wildcard = "wildcard"


class Distance(StrEnum):
    auto = "auto"
    equal = "equal"
    ordered = "ordered"


def register(app: typer.Typer) -> None:
    app.command("risk")(risk)
    app.command("anonymise")(anonymise_file)


# --- files ---------------------------------------------------------------------------------------


def _split(names: str) -> list[str]:
    return [n.strip() for n in names.split(",") if n.strip()]


def sniff_separator(path: Path) -> str:
    """The most frequent of , ; tab | in the header line."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    candidates = [",", ";", "\t", "|"]
    return max(candidates, key=header.count)


def read_table(
    path: Path, *, separator: str | None = None, text_columns: list[str] | None = None
) -> tuple[pl.DataFrame, str]:
    """Read CSV (separator sniffed unless given) or Parquet; ``text_columns`` are kept as text."""
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pl.read_parquet(path)
        if text_columns:
            present = [c for c in text_columns if c in frame.columns]
            frame = frame.with_columns(pl.col(present).cast(pl.String))
        return frame, ","
    sep = separator or sniff_separator(path)
    overrides: dict[str, Any] = {c: pl.String for c in text_columns or []}
    frame = pl.read_csv(
        path,
        separator=sep,
        infer_schema_length=None,
        schema_overrides=overrides or None,
        null_values=[""],
    )
    return frame, sep


def write_table(frame: pl.DataFrame, path: Path, separator: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.write_parquet(tmp)
    else:
        frame.write_csv(tmp, separator=separator)
    tmp.replace(path)  # whole or not at all


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# --- risk ----------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def _print_report(report: RiskReport, console: Console) -> None:
    reid = report.reidentification
    table = Table(title=f"Disclosure risk: {report.records:,} records", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("quasi-identifiers", ", ".join(report.quasi_identifiers)),
        ("missing QI values", report.missing),
        ("equivalence classes", report.classes),
        ("k-anonymity (smallest class)", report.k),
        ("average class size", report.average_class_size),
        ("sample uniques", f"{reid.sample_uniques:,} ({reid.sample_unique_share:.2%})"),
        ("prosecutor risk: highest", reid.prosecutor.highest),
        ("prosecutor risk: average", reid.prosecutor.average),
        (
            f"prosecutor risk: records above {reid.threshold:g}",
            f"{reid.prosecutor.records_at_risk:,} ({reid.prosecutor.share_at_risk:.2%})",
        ),
        (f"journalist risk: highest ({reid.journalist_basis})", reid.journalist.highest),
        ("journalist risk: average", reid.journalist.average),
        ("marketer risk", reid.marketer),
    ]
    if report.sensitive is not None:
        rows += [
            ("sensitive attribute", report.sensitive),
            ("l-diversity (distinct)", report.l_distinct),
            ("l-diversity (entropy)", report.l_entropy),
            (
                "recursive (c,l)-diversity",
                f"c={_fmt(report.recursive_c)}, l={_fmt(report.recursive_l)}",
            ),
            (f"t-closeness ({report.t_distance} distance)", report.t),
            ("δ-disclosure", report.delta),
            ("β-likeness", report.beta),
        ]
    for name, value in rows:
        table.add_row(Text(name), Text(_fmt(value)))
    console.print(table)
    if report.riskiest.height:
        riskiest = Table(title="Riskiest classes (QI values and sizes only)")
        for column in report.riskiest.columns:
            riskiest.add_column(column)
        for row in report.riskiest.iter_rows():
            # Text(), not markup: data values must never be read as rich markup.
            riskiest.add_row(*(Text(_fmt(v)) for v in row))
        console.print(riskiest)


def risk(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file.", exists=True, dir_okay=False)],
    qi: Annotated[str, typer.Option("--qi", help="Quasi-identifiers, comma-separated.")],
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive attribute for l, t, δ and β measures.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of tables.")
    ] = False,
    missing: Annotated[
        Missing, typer.Option(help="Missing QI values: their own category, or a wildcard.")
    ] = Missing.category,
    top: Annotated[int, typer.Option(help="How many of the riskiest classes to list.")] = 10,
    threshold: Annotated[
        float, typer.Option(help="A record is at risk when its risk exceeds this.")
    ] = 0.2,
    population: Annotated[
        Path | None, typer.Option(help="Population register for journalist risk (same QIs).")
    ] = None,
    t_distance: Annotated[
        Distance, typer.Option(help="t-closeness distance (auto: ordered for numbers).")
    ] = Distance.auto,
    separator: Annotated[
        str | None, typer.Option(help="CSV separator (sniffed if omitted).")
    ] = None,
) -> None:
    """Print every disclosure-risk measure and the riskiest classes (never the raw rows)."""
    quasi_ids = _split(qi)
    try:
        frame, _ = read_table(file, separator=separator)
        pop = read_table(population, separator=separator)[0] if population else None
        report = risk_report(
            frame,
            quasi_ids,
            sensitive,
            missing=missing.value,
            population=pop,
            risk_threshold=threshold,
            t_distance=t_distance.value,
            top=top,
        )
    except (ValueError, pl.exceptions.PolarsError) as exc:
        raise _fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(_json_safe(report.to_dict()), indent=2, default=str))
    else:
        _print_report(report, Console())


# --- anonymise -----------------------------------------------------------------------------------


def anonymise_file(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file.", exists=True, dir_okay=False)],
    qi: Annotated[str, typer.Option("--qi", help="Quasi-identifiers, comma-separated.")],
    hierarchies: Annotated[
        Path,
        typer.Option(help="Folder of ARX-layout hierarchy CSVs, one per QI.", file_okay=False),
    ],
    k: Annotated[int, typer.Option("--k", help="Smallest class size required.")],
    out: Annotated[Path, typer.Option(help="Where to write the anonymised file.")],
    l: Annotated[  # noqa: E741 - the model's name
        int | None, typer.Option("--l", help="Distinct sensitive values per class.")
    ] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive attribute (for --l, --t).")
    ] = None,
    t: Annotated[float | None, typer.Option("--t", help="t-closeness threshold (0..1).")] = None,
    suppression: Annotated[
        float, typer.Option(help="Largest share of records that may be removed.")
    ] = 0.02,
    report: Annotated[
        Path | None, typer.Option(help="JSON report path (default: OUT.report.json).")
    ] = None,
    keep: Annotated[
        str,
        typer.Option(
            help="Other columns to carry over, comma-separated. Columns that are not QIs, "
            "the sensitive attribute or listed here are dropped (deny by default)."
        ),
    ] = "",
    hierarchy_prefix: Annotated[
        str, typer.Option(help="File name prefix of the hierarchies (found if omitted).")
    ] = "",
    hierarchy_separator: Annotated[str, typer.Option(help="Hierarchy CSV separator.")] = ";",
    t_distance: Annotated[
        Distance, typer.Option(help="t-closeness distance (auto: ordered for numbers).")
    ] = Distance.auto,
    separator: Annotated[
        str | None, typer.Option(help="CSV separator (sniffed if omitted).")
    ] = None,
) -> None:
    """Anonymise FILE optimally (least loss) to k (and l, t); write OUT and a JSON report."""
    quasi_ids = _split(qi)
    carried = [*quasi_ids, *([sensitive] if sensitive else []), *_split(keep)]
    try:
        hier = load_arx_hierarchies(
            hierarchies, hierarchy_prefix, names=quasi_ids, separator=hierarchy_separator
        )
        frame, sep = read_table(file, separator=separator, text_columns=quasi_ids)
        unknown = [c for c in carried if c not in frame.columns]
        if unknown:
            raise ValueError(f"column(s) not in the data: {unknown}")
        dropped = [c for c in frame.columns if c not in carried]
        frame = frame.select(list(dict.fromkeys(carried)))
        result = anonymise(
            frame,
            quasi_ids,
            hier,
            k=k,
            l=l,
            sensitive=sensitive,
            t=t,
            suppression_limit=suppression,
            t_distance=t_distance.value,
        )
    except NoSolutionError as exc:
        raise _fail(f"no transformation meets the privacy models: {exc.args[0]}") from None
    except (HierarchyError, UnknownValuesError, LatticeTooLargeError) as exc:
        raise _fail(str(exc)) from None
    except (ValueError, pl.exceptions.PolarsError) as exc:
        raise _fail(str(exc)) from None

    write_table(result.data, out, sep)
    measured = sensitive if (l is not None or t is not None) else None
    before = risk_report(frame, quasi_ids, measured, t_distance=t_distance.value)
    after = (
        risk_report(result.data, quasi_ids, measured, t_distance=t_distance.value)
        if result.data.height
        else None
    )
    document = {
        "input": {"file": file.name, "records": frame.height, "sha256": sha256_file(file)},
        "output": {"file": out.name, "records": result.data.height, "sha256": sha256_file(out)},
        "columns_dropped": dropped,
        "hierarchies": {
            q: {"levels": list(h.levels), "leaves": h.table.height} for q, h in hier.items()
        },
        **result.to_dict(),
        # Measures only: the riskiest classes of the raw data must not travel with the output.
        "measures_before": before.to_dict(include_classes=False),
        "measures_after": after.to_dict(include_classes=False) if after else None,
    }
    report_path = report or out.with_name(out.name + ".report.json")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(_json_safe(document), indent=2, default=str) + "\n")

    console = Console(markup=False, highlight=False)
    levels = ", ".join(f"{q}={lv}" for q, lv in result.transformation.items())
    console.print(f"transformation: [{levels}]")
    console.print(
        f"suppressed {result.suppressed:,} of {frame.height:,} records "
        f"(limit {result.settings['suppression_limit_records']:,}); "
        f"k after: {after.k if after else '–'}; loss {result.loss.loss:.6f}; "
        f"{result.nodes_evaluated:,} of {result.lattice_size:,} transformations evaluated "
        f"in {result.elapsed_seconds:.2f} s"
    )
    if dropped:
        console.print(f"dropped {len(dropped)} column(s) not named with --qi/--sensitive/--keep")
    console.print(f"wrote {out} and {report_path}")
