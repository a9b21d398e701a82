"""The evaluation share's I/O edge: read the work folder, encrypt each file for its own
recipient, write the manifest, record the share in the store and the audit log.

Neither file is ever written in clear: each is serialised in memory, encrypted with age
(X25519, through pyrage) for its one recipient, and only the ciphertext touches a disk.
The two recipients must differ: the party that links must not be able to open the
attributes, nor the analysts the identifiers. The manifest records the recipients, the
SHA-256 of each file as written, row counts, the layout and disclosure policy versions,
and who made the share and why; the register keeps it, and the admin page lists shares
from there (with no way to download the identifiers file again).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from anonymise import cellkey
from anonymise.policy import Policy
from anonymise.pseudonymise import MasterKey
from pipelines.share import ShareError, ShareFrames, ShareLayout, build_share
from pipelines.store import Store
from pipelines.store_shares import evaluation_shares
from registry.settings import WorkFolder


def new_share_id() -> str:
    return f"shr-{secrets.token_hex(6)}"


def parse_recipient(text: str, role: str) -> Any:
    from pyrage import x25519

    try:
        return x25519.Recipient.from_str(text.strip())
    except Exception:  # pyrage raises its own error types; the message names the flag
        raise ShareError(
            [f"the {role} recipient must be an age public key (age1...), got {text[:12]!r}..."]
        ) from None


def encrypt_for(data: bytes, recipient: Any) -> bytes:
    import pyrage

    return pyrage.encrypt(data, [recipient])


@dataclass(frozen=True)
class ShareRequest:
    programme: str
    period: str
    reason: str
    requester: str
    identifiers_recipient: str
    attributes_recipient: str
    expires_on: date
    project_id: str


def _problems(req: ShareRequest, out: Path, work: Path) -> list[str]:
    problems = []
    if len(req.reason.strip()) < 10:
        problems.append("--reason must say why the share is made (at least 10 characters)")
    if not req.requester.strip():
        problems.append("--requester is required (it goes in the manifest and the audit log)")
    if req.identifiers_recipient.strip() == req.attributes_recipient.strip():
        problems.append(
            "the identifiers and attributes files must go to different recipients: whoever "
            "links must not be able to read the attributes"
        )
    if req.expires_on <= date.today():
        problems.append("--expires must be a future date")
    o, w = out.resolve(), work.resolve()
    if o == w or w in o.parents:
        problems.append(f"--out {out} is inside the pipeline's work folder: choose another place")
    return problems


def _csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode("utf-8")


def _protected_count(ids: pl.Series, secret: bytes, policy: Policy) -> str:
    """The number of people excluded, as the published statistics would show it."""
    n = ids.len()
    if n == 0:
        return "0"
    ckey = int(cellkey.record_keys(ids, secret).cast(pl.Int64).sum()) % cellkey.KEY_MODULUS
    ptable = cellkey.ptable_for(policy.max_noise, policy.variance, secret)
    import numpy as np

    values, suppressed = cellkey.protect_counts(
        np.array([n]), np.array([ckey]), ptable, policy.threshold
    )
    return policy.symbols.confidential if bool(suppressed[0]) else str(int(values[0]))


def make_share(
    work: Path,
    out: Path,
    req: ShareRequest,
    *,
    key: MasterKey,
    sdc_secret: bytes,
    policy: Policy,
    layout: ShareLayout,
    store: Store,
    share_id: str | None = None,
) -> dict[str, Any]:
    """Build, encrypt, write and record one share; return its manifest."""
    problems = _problems(req, out, work)
    # Safe projects, safe people: the same register that governs research extracts.
    from anonymise.projects import share_refusals
    from pipelines.project_register import ProjectRegister

    project = ProjectRegister(store).get(req.project_id)
    problems.extend(share_refusals(project, req.requester, req.programme, date.today()))
    if project is not None and req.expires_on > project.expires_on:
        problems.append(
            f"--expires {req.expires_on} is after project {project.project_id}'s expiry "
            f"({project.expires_on}): a share cannot outlive its approval"
        )
    recipients: dict[str, Any] = {}
    for role, text in (
        ("identifiers", req.identifiers_recipient),
        ("attributes", req.attributes_recipient),
    ):
        try:
            recipients[role] = parse_recipient(text, role)
        except ShareError as exc:
            problems.extend(exc.problems)
    linked_path = WorkFolder(work).linked_records
    if not linked_path.exists():
        problems.append(
            f"no zone A linked records at {linked_path}: run the pipeline (zone A working "
            "copies are kept only as long as the retention schedule allows)"
        )
    if problems:
        store.audit(
            req.requester or "unknown",
            "evaluation_share_refused",
            {"project_id": req.project_id, "reasons": problems},
        )
        raise ShareError(problems)
    frames = _frames(work, key, layout, req, share_id := share_id or new_share_id())
    files = {
        "identifiers": _csv(frames.identifiers),
        "attributes": _csv(frames.attributes),
    }
    out.mkdir(parents=True, exist_ok=True)
    written: list[dict[str, Any]] = []
    for role, data in files.items():
        path = out / f"{share_id}.{role}.csv.age"
        if path.exists():
            raise ShareError([f"{path} already exists; nothing was overwritten"])
        cipher = encrypt_for(data, recipients[role])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cipher)
        frame = frames.identifiers if role == "identifiers" else frames.attributes
        written.append(
            {
                "role": role,
                "file": path.name,
                "recipient": str(recipients[role]),
                "sha256": hashlib.sha256(cipher).hexdigest(),
                "rows": frame.height,
                "columns": frame.columns,
            }
        )
    manifest = {
        "manifest_version": 1,
        "share_id": share_id,
        "programme": layout.programme,
        "title": layout.title,
        "period": req.period,
        "lawful_basis": layout.lawful_basis,
        "project_id": req.project_id,
        "layout": layout.ref,
        "disclosure_policy": policy.ref,
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "created_by": req.requester,
        "reason": req.reason,
        "expires_on": req.expires_on.isoformat(),
        "files": written,
        "people": frames.people,
        "families": frames.families,
        "people_excluded_on_objection": _protected_count(frames.excluded_ids, sdc_secret, policy),
        "encryption": "age (X25519) for one recipient per file; see docs/evaluation-share.md",
    }
    man_path = out / f"{share_id}.manifest.json"
    fd = os.open(man_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    with store.engine.begin() as conn:
        conn.execute(
            evaluation_shares.insert().values(
                share_id=share_id,
                programme=layout.programme,
                period=req.period,
                project_id=req.project_id,
                created_at=datetime.now(UTC),
                created_by=req.requester,
                reason=req.reason,
                expires_on=req.expires_on,
                manifest=manifest,
            )
        )
    store.audit(
        req.requester,
        "evaluation_share",
        {
            "share_id": share_id,
            "project_id": req.project_id,
            "programme": layout.programme,
            "period": req.period,
            "files": [{k: w[k] for k in ("role", "sha256", "rows", "recipient")} for w in written],
            "people_excluded_on_objection": manifest["people_excluded_on_objection"],
        },
    )
    return manifest


def _frames(
    work: Path, key: MasterKey, layout: ShareLayout, req: ShareRequest, share_id: str
) -> ShareFrames:
    from pipelines.derive import ZoneBFrames, need_outcomes

    folder = WorkFolder(work)
    persons = pl.read_parquet(folder.persons)
    events = {p.stem: pl.read_parquet(p) for p in sorted(folder.events.glob("*.parquet"))}
    as_at = _data_as_at(work)
    outcomes = need_outcomes(ZoneBFrames(persons, events, as_at))
    return build_share(
        pl.read_parquet(folder.linked_records),
        persons,
        events["early_help"],
        outcomes,
        key=key,
        share_id=share_id,
        period=req.period,
        layout=layout,
        excluded=persons.filter(pl.col("objected"))["person_id"],
    )


def _data_as_at(work: Path) -> date:
    """The data date the pipeline ran with (run.json), else the latest event in zone B."""
    try:
        doc = json.loads(WorkFolder(work).run_manifest.read_text())
        return date.fromisoformat(str(doc["data_as_at"]))
    except (OSError, ValueError, KeyError):
        pass
    ev = pl.read_parquet(WorkFolder(work).events_of("early_help"))
    latest = ev["referral_date"].max()
    return latest if isinstance(latest, date) else date.today()


def list_shares(store: Store) -> list[dict[str, Any]]:
    """Every share, newest first: what the admin page and `portal share list` show."""
    q = sa.select(evaluation_shares).order_by(evaluation_shares.c.created_at.desc())
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    out = []
    for r in rows:
        man = r["manifest"] if isinstance(r["manifest"], dict) else json.loads(r["manifest"])
        out.append(
            {
                "share_id": r["share_id"],
                "programme": r["programme"],
                "period": r["period"],
                "created_by": r["created_by"],
                "created_at": r["created_at"],
                "expires_on": r["expires_on"],
                "expired": r["expires_on"] < date.today(),
                "manifest": man,
            }
        )
    return out
