"""`portal projects`: the register of approved research projects (Five Safes: safe
projects, safe people) and the extracts due for deletion when a project ends."""

from __future__ import annotations

import os
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from anonymise.projects import ProjectError, ProjectKind, ProjectSpec
from pipelines.project_register import ProjectRegister, UnknownProjectError
from pipelines.store import Store, default_store_url
from registry.settings import login_name

projects_app = typer.Typer(
    help="Approved research projects: add, list, show, close; expired extracts.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(projects_app, name="projects")


StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL.")]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who is making the change (audit log; default: $USER)."),
]


def _actor(actor: str | None) -> str:
    return actor or login_name()


def _split(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _fail(console: Console, message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)


@projects_app.command("add")
def add(
    title: Annotated[str, typer.Option(help="Short title.")],
    purpose: Annotated[str, typer.Option(help="What the project is for (on every certificate).")],
    lawful_basis: Annotated[str, typer.Option(help="Lawful basis for processing.")],
    variables: Annotated[
        str,
        typer.Option(
            help="Approved variables, comma-separated (for an evaluation share: the "
            "programme, e.g. supporting-families)."
        ),
    ],
    researchers: Annotated[str, typer.Option(help="Named researchers' portal accounts.")],
    approver: Annotated[str, typer.Option(help="Who approved the project.")],
    expires: Annotated[str, typer.Option(help="Expiry date, YYYY-MM-DD.")],
    approved: Annotated[
        str | None, typer.Option(help="Approval date, YYYY-MM-DD (default: today).")
    ] = None,
    family: Annotated[
        bool, typer.Option("--family", help="Family-level analysis approved (family_id).")
    ] = False,
    evaluation_share: Annotated[
        bool,
        typer.Option(
            "--evaluation-share",
            help="An evaluation share project (portal share evaluation), not research.",
        ),
    ] = False,
    actor: ActorOpt = None,
    store: StoreOpt = None,
) -> None:
    """Register an approved project; prints its id (the only name extracts accept)."""
    console = Console()
    try:
        spec = ProjectSpec(
            title=title,
            purpose=purpose,
            lawful_basis=lawful_basis,
            variables=_split(variables),
            researchers=_split(researchers),
            approver=approver,
            approved_on=date.fromisoformat(approved) if approved else date.today(),
            expires_on=date.fromisoformat(expires),
            family_analysis=family,
            kind=ProjectKind.EVALUATION_SHARE if evaluation_share else ProjectKind.RESEARCH,
        )
    except ValueError as e:
        raise _fail(console, f"dates must be YYYY-MM-DD: {e}") from None
    st = Store(store or default_store_url())
    try:
        project = ProjectRegister(st).add(spec, actor=_actor(actor))
    except ProjectError as e:
        raise _fail(console, str(e)) from None
    finally:
        st.dispose()
    console.print(f"Registered project {project.project_id}: {escape(project.title)}")


@projects_app.command("list")
def list_projects(store: StoreOpt = None) -> None:
    """Every project: id, status, expiry, researchers, title."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        reg = ProjectRegister(st)
        today = date.today()
        rows = [(p, len(reg.ledger(p.project_id))) for p in reg.all()]
    finally:
        st.dispose()
    if not rows:
        console.print("No projects registered yet (`portal projects add`).")
        return
    for p, n in rows:
        state = "open" if p.is_live(today) else ("closed" if p.closed_on else "expired")
        console.print(
            f"{p.project_id}  {state:<7} expires {p.expires_on}  {n} extract(s)  "
            f"researchers: {escape(', '.join(p.researchers))}  {escape(p.title)}",
            soft_wrap=True,
        )


@projects_app.command("show")
def show(project_id: Annotated[str, typer.Argument()], store: StoreOpt = None) -> None:
    """One project in full, with its release ledger."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        reg = ProjectRegister(st)
        p = reg.require(project_id)
        ledger = reg.ledger(project_id)
    except UnknownProjectError as err:
        raise _fail(console, str(err)) from None
    finally:
        st.dispose()
    s = p.spec
    for label, value in (
        ("Project", p.project_id),
        ("Title", s.title),
        ("Purpose", s.purpose),
        ("Lawful basis", s.lawful_basis),
        ("Kind", s.kind.value.replace("_", " ")),
        ("Variables", ", ".join(s.variables)),
        ("Family analysis", "approved" if s.family_analysis else "not approved"),
        ("Researchers", ", ".join(s.researchers)),
        ("Approved", f"{s.approved_on} by {s.approver}"),
        ("Expires", str(s.expires_on)),
        (
            "Status",
            p.status.value + (f" on {p.closed_on}: {p.closed_reason}" if p.closed_on else ""),
        ),
    ):
        console.print(f"{label + ':':<17}{escape(value)}", soft_wrap=True)
    console.print(f"Extracts released: {len(ledger)}")
    for e in ledger:
        levels = ", ".join(
            f"{v} as {e.level_names.get(v, '?')}" for v in e.variables if v in e.level_names
        )
        console.print(
            f"  #{e.extract_no} {e.at:%Y-%m-%d %H:%M} by {escape(e.researcher)}: {e.records:,} "
            f"records; {escape(levels)}; file {escape(e.file_path or 'portal download')}",
            soft_wrap=True,
        )


@projects_app.command("close")
def close(
    project_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why the project is closed (audit log).")],
    actor: ActorOpt = None,
    store: StoreOpt = None,
) -> None:
    """Close a project: no further extracts; its files are due for deletion."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        ProjectRegister(st).close(
            project_id, actor=_actor(actor), reason=reason, today=date.today()
        )
    except (UnknownProjectError, ProjectError) as e:
        raise _fail(console, str(e)) from None
    finally:
        st.dispose()
    console.print(f"Closed project {project_id}.")


@projects_app.command("expired")
def expired(
    actor: ActorOpt = None,
    store: StoreOpt = None,
) -> None:
    """List extract files of closed or expired projects for deletion; audit their expiry."""
    console = Console()
    st = Store(store or default_store_url())
    try:
        reg = ProjectRegister(st)
        today = date.today()
        newly = reg.record_expiry(today, actor=_actor(actor))
        due = reg.expired_extracts(today)
    finally:
        st.dispose()
    if not due:
        console.print("No extracts are due for deletion.")
        return
    console.print(
        f"{len(due)} extract(s) due for deletion ({len(newly)} newly recorded as expired):"
    )
    for p, e in due:
        where = e.file_path or "portal download (ask the researcher to delete it)"
        present = " [exists]" if e.file_path and os.path.exists(e.file_path) else ""
        console.print(
            f"  {p.project_id} #{e.extract_no}: {escape(where)}{present} "
            f"(SHA-256 {e.sha256[:12]}...)",
            soft_wrap=True,
        )
