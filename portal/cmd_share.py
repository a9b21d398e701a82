"""`portal share evaluation|list|keygen`: the national evaluation share (identifiers and
attributes in separate files, each encrypted for its own recipient)."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

share_app = typer.Typer(
    help="Data shares for national evaluations: identifiers and attributes kept apart.",
    no_args_is_help=True,
)
DEMO_RECIPIENTS = Path("data") / "demo" / "share-recipients"


def register(app: typer.Typer) -> None:
    app.add_typer(share_app, name="share")


def _error(console: Console, lines: list[str], code: int = 1) -> None:
    for line in lines:
        console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
    raise typer.Exit(code=code)


def _demo_recipient(role: str) -> str:
    """A throwaway recipient for the demo: its identity (private key) stays in
    data/demo/share-recipients/ so the demo files can be opened to look at."""
    from pyrage import x25519

    path = DEMO_RECIPIENTS / f"{role}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(str(x25519.Identity.generate()) + "\n")
    identity = x25519.Identity.from_str(path.read_text().strip())
    return str(identity.to_public())


def _demo_project(store: object, programme: str, requester: str) -> str:
    """The demo's own evaluation share project (registered once, approved by a demo IG lead)."""
    from anonymise.projects import ProjectKind, ProjectSpec
    from pipelines.project_register import ProjectRegister
    from pipelines.store import Store

    assert isinstance(store, Store)
    reg = ProjectRegister(store)
    today = date.today()
    for p in reg.all():
        live = p.spec.kind is ProjectKind.EVALUATION_SHARE and p.is_live(today)
        if live and requester in p.researchers and programme in p.variables:
            return p.project_id
    spec = ProjectSpec(
        title="Demo: Supporting Families national evaluation share",
        purpose="Demo of the national impact study share on the synthetic county only.",
        lawful_basis="Digital Economy Act 2017, s.35 (public service delivery)",
        variables=(programme,),
        researchers=(requester,),
        approver="demo-ig-lead",
        approved_on=today,
        expires_on=today + timedelta(days=365),
        kind=ProjectKind.EVALUATION_SHARE,
    )
    return reg.add(spec, actor="demo-ig-lead").project_id


@share_app.command("evaluation")
def evaluation(
    period: Annotated[str, typer.Option(help="Financial year, e.g. 2024/25.")],
    out: Annotated[Path, typer.Option(help="Folder for the two encrypted files and manifest.")],
    programme: Annotated[str, typer.Option(help="The programme's layout.")] = "supporting-families",
    identifiers_recipient: Annotated[
        str | None, typer.Option(help="age public key of whoever links (e.g. ONS).")
    ] = None,
    attributes_recipient: Annotated[
        str | None, typer.Option(help="age public key of the analysts.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why the share is made (manifest, audit).")] = "",
    requester: Annotated[
        str, typer.Option(envvar="USER", show_envvar=False, help="Who makes it (default: $USER).")
    ] = "",
    project: Annotated[
        str | None,
        typer.Option(help="The approved evaluation share project (portal projects add)."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expiry date (YYYY-MM-DD); default one year.")
    ] = None,
    layout: Annotated[
        Path | None, typer.Option(help="A layout file instead of the programme's own.")
    ] = None,
    work: Annotated[Path, typer.Option(help="Pipeline working folder.")] = Path("data/work"),
    store: Annotated[str | None, typer.Option(help="Store URL (register, audit).")] = None,
    key_file: Annotated[Path | None, typer.Option(help="Pseudonymisation key file.")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo keys, demo folders and demo recipients.")
    ] = False,
) -> None:
    """Make an evaluation share: identifiers for the linker, attributes for the analysts."""
    from anonymise.cellkey import SecretNotConfiguredError, load_sdc_secret
    from anonymise.policy import default_policy
    from anonymise.pseudonymise import PseudonymKeyError, load_master_key
    from pipelines.share import ShareError, load_layout
    from pipelines.share_io import ShareRequest, make_share
    from pipelines.store import Store, default_store_url

    console = Console()
    if demo:
        work = Path("data/demo/work") if work == Path("data/work") else work
        store = store or f"sqlite:///{Path('data/demo/portal.sqlite').resolve()}"
        identifiers_recipient = identifiers_recipient or _demo_recipient("identifiers")
        attributes_recipient = attributes_recipient or _demo_recipient("attributes")
        reason = reason or "Demo: the Supporting Families evaluation share on synthetic data."
        requester = requester or "demo-admin"
    missing = [
        flag
        for flag, value in (
            ("--identifiers-recipient", identifiers_recipient),
            ("--attributes-recipient", attributes_recipient),
            ("--project", project or ("demo" if demo else None)),
        )
        if not value
    ]
    if missing:
        lines = [
            f"{flag} is required"
            + (
                " (an age public key, age1...)"
                if "recipient" in flag
                else " (an approved project id)"
            )
            for flag in missing
        ]
        _error(console, lines, 2)
    try:
        key = load_master_key(demo=demo, key_file=key_file)
        secret = load_sdc_secret(demo=demo)
        lay = load_layout(programme, layout)
        expires_on = date.fromisoformat(expires) if expires else date.today() + timedelta(365)
    except (PseudonymKeyError, SecretNotConfiguredError) as exc:
        _error(console, [str(exc)], 2)
        return
    except ShareError as exc:
        _error(console, exc.problems, 2)
        return
    except ValueError:
        _error(console, [f"--expires must be a date YYYY-MM-DD, got {expires!r}"], 2)
        return
    st = Store(store or default_store_url())
    if demo and project is None:
        project = _demo_project(st, lay.programme, requester)
    try:
        manifest = make_share(
            work,
            out,
            ShareRequest(
                programme=lay.programme,
                period=period,
                reason=reason,
                requester=requester,
                identifiers_recipient=identifiers_recipient or "",
                attributes_recipient=attributes_recipient or "",
                expires_on=expires_on,
                project_id=project or "",
            ),
            key=key,
            sdc_secret=secret,
            policy=default_policy(),
            layout=lay,
            store=st,
        )
    except ShareError as exc:
        _error(console, exc.problems)
        return
    finally:
        st.dispose()
    console.print(
        f"Share [bold]{manifest['share_id']}[/bold] ({escape(manifest['title'])}, "
        f"{escape(period)}): {manifest['people']:,} people in {manifest['families']:,} families; "
        f"people excluded on objection: {manifest['people_excluded_on_objection']} "
        "(a protected count)."
    )
    for f in manifest["files"]:
        console.print(
            f"  {f['role']:<11} {escape(str(out / f['file']))}  {f['rows']:,} rows, "
            f"for {escape(f['recipient'][:16])}..., SHA-256 {f['sha256'][:16]}...",
            soft_wrap=True,
        )
    console.print(f"  manifest    {escape(str(out / (manifest['share_id'] + '.manifest.json')))}")
    if demo:
        console.print(
            f"Demo recipients' keys (to open the files and look): {escape(str(DEMO_RECIPIENTS))}/"
        )


@share_app.command("list")
def list_command(
    store: Annotated[str | None, typer.Option(help="Store URL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifests as JSON.")] = False,
) -> None:
    """Every share made: programme, period, who, when, expiry and files (no contents)."""
    from pipelines.share_io import list_shares
    from pipelines.store import Store, default_store_url

    st = Store(store or default_store_url())
    try:
        shares = list_shares(st)
    finally:
        st.dispose()
    if as_json:
        print(json.dumps([s["manifest"] for s in shares], indent=2, default=str))
        return
    t = Table(title=f"Evaluation shares ({len(shares)})")
    for c in ("share", "programme", "period", "made by", "made", "expires", "people"):
        t.add_column(c)
    for s in shares:
        t.add_row(
            s["share_id"],
            s["programme"],
            s["period"],
            escape(s["created_by"]),
            str(s["created_at"])[:16],
            f"{s['expires_on']}{' (expired)' if s['expired'] else ''}",
            f"{s['manifest']['people']:,}",
        )
    Console().print(t)


@share_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option(help="Where to write the identity (private key).")],
) -> None:
    """Make an age key pair for a recipient: the identity file (owner-only) stays with the
    recipient; give the printed public key to whoever makes shares."""
    from pyrage import x25519

    console = Console()
    if out.exists():
        _error(console, [f"{out} exists; nothing was overwritten"], 2)
    identity = x25519.Identity.generate()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(str(identity) + "\n")
    console.print(f"public key: {identity.to_public()}")
