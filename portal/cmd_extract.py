"""`portal extract` and `portal check-output`: research extracts and output checking."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape

from anonymise.extract import (
    ExtractRefused,
    ExtractRequest,
    extract_from_work_dir,
    write_files,
)
from anonymise.output_check import check_output
from anonymise.policy import default_policy
from anonymise.pseudonymise import PseudonymKeyError
from pipelines.store import Store, default_store_url


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)
    app.command("check-output")(check_output_command)


def _split(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def extract(
    project: Annotated[str, typer.Option(help="Research project name (keys the pseudonyms).")],
    purpose: Annotated[
        str, typer.Option(help="What the extract is for (goes on the certificate).")
    ],
    variables: Annotated[str, typer.Option(help="Comma-separated variables from the catalogue.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    k: Annotated[int | None, typer.Option(help="k-anonymity (default: the policy's).")] = None,
    l: Annotated[  # noqa: E741 - the model's name
        int | None, typer.Option("--l", help="Distinct l-diversity on --sensitive.")
    ] = None,  # noqa: E741
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive variable for l-diversity.")
    ] = None,
    requester: Annotated[
        str, typer.Option(help="Who asked (certificate and audit log).")
    ] = os.environ.get("USER", "unknown"),
    work: Annotated[Path, typer.Option(help="Pipeline working folder (zone B).")] = Path(
        "data/work"
    ),
    store: Annotated[str | None, typer.Option(help="Store URL for the audit log.")] = None,
    key_file: Annotated[Path | None, typer.Option(help="Pseudonymisation key file.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Use the demo key.")] = False,
) -> None:
    """Build a pseudonymised, k-anonymous research extract with a release certificate."""
    console = Console()
    st = Store(store or default_store_url())
    latest = st.latest_release()
    req = ExtractRequest(project, purpose, requester, _split(variables), k, l, sensitive)
    try:
        files = extract_from_work_dir(
            work,
            req,
            demo=demo,
            key_file=key_file,
            data_as_at=str(latest.data_as_at) if latest else "unknown",
            audit=st,
            via="cli",
            data_name=out.name,
        )
    except PseudonymKeyError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    except ExtractRefused as e:
        console.print(f"[red]{escape(str(e))}[/red]", soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        st.dispose()
    write_files(files, out)
    cert = files.certificate
    a = cert["achieved"]
    console.print(
        f"Wrote {cert['records']['released']:,} records to {escape(str(out))} "
        f"(k = {a['k_anonymity']}, {cert['records']['suppressed']:,} suppressed, "
        f"{cert['records']['objectors_excluded']:,} excluded on objection).",
        soft_wrap=True,
    )
    console.print(
        f"Certificate: {escape(str(out.with_suffix('')))}.certificate.txt / .json; "
        f"SHA-256 {cert['sha256']}",
        soft_wrap=True,
    )


def check_output_command(
    file: Annotated[Path, typer.Argument(help="A table a researcher made (CSV).")],
    count: Annotated[str, typer.Option(help="Column with the number of records per cell.")] = "n",
    total: Annotated[
        str | None, typer.Option(help="Magnitude column (sum per cell), if any.")
    ] = None,
    top1: Annotated[str | None, typer.Option(help="Largest single contribution per cell.")] = None,
    top2: Annotated[str | None, typer.Option(help="Second largest contribution per cell.")] = None,
) -> None:
    """Check a researcher's own table before it leaves: threshold, dominance (n,k), p% rule."""
    console = Console()
    try:
        df = pl.read_csv(file, infer_schema_length=10000)
    except (OSError, pl.exceptions.PolarsError) as e:
        console.print(
            f"[red]error:[/red] cannot read {escape(str(file))}: {escape(str(e).splitlines()[0])}",
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None
    try:
        report = check_output(
            df, policy=default_policy(), count=count, total=total, top1=top1, top2=top2
        )
    except ValueError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    for line in report.summary_lines():
        console.print(escape(line), soft_wrap=True)
    if not report.passed:
        raise typer.Exit(code=1)
