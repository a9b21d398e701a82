"""`portal extract` and `portal check-output`: research extracts and output checking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape

from anonymise.extract import (
    ExtractInvalid,
    ExtractRefused,
    ExtractRequest,
    output_paths,
    request_extract,
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
    project: Annotated[
        str, typer.Option(help="Approved project id from the register (`portal projects list`).")
    ],
    variables: Annotated[
        str, typer.Option(help="Comma-separated variables approved for the project.")
    ],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet), outside data/.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    k: Annotated[int | None, typer.Option(help="k-anonymity (default: the policy's).")] = None,
    l: Annotated[  # noqa: E741 - the model's name
        int | None, typer.Option("--l", help="Distinct l-diversity on --sensitive.")
    ] = None,  # noqa: E741
    sensitive: Annotated[
        str | None, typer.Option(help="Sensitive variable for l-diversity.")
    ] = None,
    note: Annotated[str, typer.Option(help="A note for this extract's certificate.")] = "",
    requester: Annotated[
        str,
        typer.Option(
            envvar="USER",
            show_envvar=False,
            help="Your portal account (must be named on the project; default: $USER).",
        ),
    ] = "unknown",
    work: Annotated[Path, typer.Option(help="Pipeline working folder (zone B).")] = Path(
        "data/work"
    ),
    store: Annotated[str | None, typer.Option(help="Store URL (register, ledger, audit).")] = None,
    key_file: Annotated[Path | None, typer.Option(help="Pseudonymisation key file.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Use the demo key.")] = False,
) -> None:
    """Build a research extract for an approved project, checked against all it already holds."""
    console = Console()
    st = Store(store or default_store_url())
    latest = st.latest_release()
    req = ExtractRequest(project, note, requester, _split(variables), k, l, sensitive)
    try:
        files = request_extract(
            st,
            work,
            req,
            data_as_at=str(latest.data_as_at) if latest else "unknown",
            via="cli",
            demo=demo,
            key_file=key_file,
            out=out,
            force=force,
        )
    except (PseudonymKeyError, ExtractInvalid) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    except ExtractRefused as e:
        console.print(f"[red]{escape(str(e))}[/red]", soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        st.dispose()
    cert = files.certificate
    a = cert["achieved"]
    console.print(
        f"Wrote {cert['records']['released']:,} records to {escape(str(out))} "
        f"(extract {cert['extract_no']} of {cert['project']}; k = {a['k_anonymity']} on the "
        f"union of everything the project holds, {cert['records']['suppressed']:,} suppressed, "
        f"{cert['records']['objectors_excluded']:,} excluded on objection). Files are "
        f"readable by you only; delete them when the project ends ({cert['project_expires']}).",
        soft_wrap=True,
    )
    if cert["withheld"]:
        console.print(
            "Withheld entirely (generalised to * for every record): " + ", ".join(cert["withheld"]),
            soft_wrap=True,
        )
    console.print(
        f"Certificate: {escape(str(output_paths(out)[3]))} / .json; SHA-256 {cert['sha256']}",
        soft_wrap=True,
    )


def check_output_command(
    file: Annotated[Path, typer.Argument(help="A table a researcher made (CSV).")],
    count: Annotated[
        str, typer.Option(help="Count column(s), comma-separated: records per cell.")
    ] = "n",
    total: Annotated[
        str | None, typer.Option(help="Magnitude column (sum per cell), if any.")
    ] = None,
    top1: Annotated[str | None, typer.Option(help="Largest single contribution per cell.")] = None,
    top2: Annotated[str | None, typer.Option(help="Second largest contribution per cell.")] = None,
) -> None:
    """Check a researcher's own table before it leaves: threshold, dominance (n,k), p% rule."""
    console = Console()
    try:
        # Read as text: a count column with a blank or "12.5" must be reported, not coerced.
        df = pl.read_csv(file, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as e:
        console.print(
            f"[red]error:[/red] cannot read {escape(str(file))}: {escape(str(e).splitlines()[0])}",
            soft_wrap=True,
        )
        raise typer.Exit(code=2) from None
    try:
        report = check_output(
            df, policy=default_policy(), count=_split(count), total=total, top1=top1, top2=top2
        )
    except ValueError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=2) from None
    for line in report.summary_lines():
        console.print(escape(line), soft_wrap=True)
    if not report.passed:
        raise typer.Exit(code=1)
