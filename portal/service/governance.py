"""The information governance view (administrators): approved projects and their extract
ledgers, evaluation shares, erasure and restriction requests, and what the retention
schedule says is due now.

Read-only. Every change stays on the command line (`portal projects`, `portal share`,
`portal requests`, `portal retention`), where it is validated and audited. No identifier
of a child or family is in any of it: requests are held as keyed tokens and are listed
without them; the ledger shows record counts and file fingerprints, not records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from anonymise.policy import RetentionSchedule
from pipelines import retention
from pipelines.project_register import ProjectRegister
from pipelines.requests import list_requests, request_counts
from pipelines.share_io import list_shares
from pipelines.store import Store


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def projects(store: Store, today: date) -> list[dict[str, Any]]:
    """Every approved project, newest approval first, with its state and extract ledger."""
    reg = ProjectRegister(store)
    out = []
    for p in reg.all():
        ledger = reg.ledger(p.project_id)
        state = "open" if p.is_live(today) else ("closed" if p.closed_on else "expired")
        on_disk = [e for e in ledger if e.file_path and Path(e.file_path).exists()]
        out.append(
            {
                "project_id": p.project_id,
                "title": p.title,
                "kind": p.spec.kind.value,
                "state": state,
                "lawful_basis": p.spec.lawful_basis,
                "approver": p.spec.approver,
                "approved_on": _iso(p.spec.approved_on),
                "expires_on": _iso(p.spec.expires_on),
                "closed_on": _iso(p.closed_on),
                "researchers": list(p.researchers),
                "variables": list(p.variables),
                "family_analysis": p.family_analysis,
                "extracts": len(ledger),
                "last_extract_at": _iso(max((e.at for e in ledger), default=None)),
                # Files written by `portal extract` that still exist on the server; an
                # ended project's are due for deletion (see retention).
                "extract_files_on_server": len(on_disk),
            }
        )
    return sorted(out, key=lambda r: (r["approved_on"], r["project_id"]), reverse=True)


def shares(store: Store) -> list[dict[str, Any]]:
    return [
        {
            "share_id": s["share_id"],
            "programme": s["programme"],
            "period": s["period"],
            "created_by": s["created_by"],
            "created_at": _iso(s["created_at"]),
            "expires_on": _iso(s["expires_on"]),
            "expired": bool(s["expired"]),
            "project_id": (s["manifest"] or {}).get("project_id"),
            "reason": (s["manifest"] or {}).get("reason"),
            "files": len((s["manifest"] or {}).get("files") or []),
        }
        for s in list_shares(store)
    ]


def requests(store: Store) -> dict[str, Any]:
    """Erasure and restriction requests without their tokens, and counts by type/status."""
    rows = [
        {k: _iso(v) if isinstance(v, date | datetime) else v for k, v in r.items()}
        for r in list_requests(store).iter_rows(named=True)
    ]
    return {"counts": request_counts(store), "requests": rows}


def retention_due(
    schedule: RetentionSchedule, store: Store, work_dir: Path | None
) -> list[dict[str, Any]]:
    """What the schedule says is due for deletion now (a dry run: nothing is deleted)."""
    items = retention.due(schedule, work_dir=work_dir, store=store, now=datetime.now(UTC))
    return [
        {
            "category": i.category,
            "count": i.count,
            "oldest": _iso(i.oldest),
            "what": i.describe(),
        }
        for i in items
    ]
