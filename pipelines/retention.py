"""The retention schedule: what is due for deletion, and deleting it.

The schedule is `[retention]` in the disclosure-control policy file (days per category;
0 means "as soon as the run is done with it"). `due` lists what has outlived it;
`apply` deletes exactly that and writes one audit entry per category with the count
deleted, never a name, a person or a row. `portal retention --dry-run|--apply` calls them;
every pipeline run calls `due` and says what is due.

Categories and where they live:
- zone A working copies: `zone_a/linked_records*.parquet` in the work folder (names, dates
  of birth, NHS/NI/UPN) and the linkage's pair decisions `zone_a/linkage_decisions.parquet`
  (record ids and match weights, which clerical review reads). With 0 days a run never
  leaves one behind;
- quarantine files: `zone_a/quarantine/*.csv` (the rows that failed validation, with their
  identifiers); the counts-only `quarantine_report.csv` is not personal and stays;
- zone B tables: `zone_b/**` (pseudonymous persons, events, the research table);
- superseded cubes: the true-count cubes and unit ledgers of a release that a newer release
  replaced more than the given days ago. The newest two published releases are always kept
  (the portal compares them; the next routine release carries the newest one's ledger), and
  so are the reference releases they draw revised values from (materiality); the release
  row, its metadata and its audit trail stay;
- extracts: research extract files in the extracts folder (default `data/extracts`) older
  than the schedule, and, whatever their age, every file the extract ledger recorded for a
  project that is closed or past its expiry (the project's end is its own schedule);
- audit log entries;
- clerical linkage labels: the data stewards' labels, `zone_a/clerical_labels.parquet` in
  the work folder, and files in the labels folder (default `data/linkage_labels`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from anonymise.policy import RetentionSchedule
from pipelines.store import Store
from registry.settings import WorkFolder

DEFAULT_EXTRACTS_DIR = Path("data") / "extracts"
DEFAULT_LABELS_DIR = Path("data") / "linkage_labels"
CATEGORIES = (
    "zone_a_working_copies",
    "quarantine_files",
    "zone_b_tables",
    "superseded_cubes",
    "extracts",
    "audit_log",
    "clerical_labels",
)
KEEP_NEWEST_PUBLISHED = 2


@dataclass(frozen=True)
class DueItem:
    category: str
    count: int  # files, releases or audit entries
    oldest: datetime | None
    paths: tuple[Path, ...] = field(default=(), repr=False)
    releases: tuple[str, ...] = ()
    audit_before: datetime | None = None

    def describe(self) -> str:
        unit = {
            "superseded_cubes": "release(s)",
            "audit_log": "audit entr(y/ies)",
        }.get(self.category, "file(s)")
        since = f", oldest from {self.oldest:%Y-%m-%d}" if self.oldest else ""
        return f"{self.category}: {self.count} {unit}{since}"


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _old_files(paths: list[Path], days: int, now: datetime, category: str) -> DueItem | None:
    cutoff = now - timedelta(days=days)
    old = sorted(p for p in paths if p.is_file() and _mtime(p) <= cutoff)
    if not old:
        return None
    return DueItem(category, len(old), min(_mtime(p) for p in old), tuple(old))


def due(
    schedule: RetentionSchedule,
    *,
    work_dir: Path | None = None,
    store: Store | None = None,
    extracts_dir: Path | None = DEFAULT_EXTRACTS_DIR,
    labels_dir: Path | None = DEFAULT_LABELS_DIR,
    now: datetime | None = None,
) -> list[DueItem]:
    """Everything the schedule says should be deleted now (nothing is deleted here)."""
    now = now or datetime.now(UTC)
    days = schedule.days()
    found: list[DueItem | None] = []
    if work_dir is not None and work_dir.is_dir():
        folder = WorkFolder(work_dir)
        zone_a = folder.zone_a
        found.append(
            _old_files(
                [*zone_a.glob("linked_records*.parquet"), folder.clerical_decisions],
                days["zone_a_working_copies"],
                now,
                "zone_a_working_copies",
            )
        )
        found.append(
            _old_files(
                list(folder.quarantine.glob("*.csv")),
                days["quarantine_files"],
                now,
                "quarantine_files",
            )
        )
        found.append(
            _old_files(
                [p for p in folder.zone_b.rglob("*") if p.is_file()],
                days["zone_b_tables"],
                now,
                "zone_b_tables",
            )
        )
    labels = [WorkFolder(work_dir).clerical_labels] if work_dir is not None else []
    if labels_dir is not None and labels_dir.is_dir():
        labels += [p for p in labels_dir.rglob("*") if p.is_file()]
    found.append(_old_files(labels, days["clerical_labels"], now, "clerical_labels"))
    extracts = []
    if extracts_dir is not None and extracts_dir.is_dir():
        extracts = [p for p in extracts_dir.rglob("*") if p.is_file()]
    old = _old_files(extracts, days["extracts"], now, "extracts")
    ended = _ended_project_files(store, now) if store is not None else []
    found.append(_merge("extracts", old, ended))
    if store is not None:
        found.append(_superseded(store, days["superseded_cubes"], now))
        cutoff = now - timedelta(days=days["audit_log"])
        n = store.count_audit_before(cutoff)
        if n:
            found.append(DueItem("audit_log", n, None, audit_before=cutoff))
    return [d for d in found if d is not None]


def _ended_project_files(store: Store, now: datetime) -> list[Path]:
    """Extract files (the data file and the dictionary and certificates written beside it)
    that the ledger recorded for projects that are closed or past expiry, still on disk.
    Extracts downloaded through the portal have no file here: the researcher deletes them."""
    from anonymise.ledger import output_paths
    from pipelines.project_register import ProjectRegister

    files: set[Path] = set()
    for _project, entry in ProjectRegister(store).expired_extracts(now.date()):
        if entry.file_path:
            files.update(p for p in output_paths(Path(entry.file_path)) if p.is_file())
    return sorted(files)


def _merge(category: str, item: DueItem | None, more: list[Path]) -> DueItem | None:
    paths = sorted({*(item.paths if item else ()), *more})
    if not paths:
        return None
    return DueItem(category, len(paths), min(_mtime(p) for p in paths), tuple(paths))


def _superseded(store: Store, days: int, now: datetime) -> DueItem | None:
    releases = store.list_releases()  # newest first
    newest_published = [r.release_id for r in releases if r.status == "published"]
    protected = set(newest_published[:KEEP_NEWEST_PUBLISHED])
    # A kept release may show values of its reference release (materiality): keep that
    # release's cubes too, and its reference's, as far back as the chain goes.
    refs = {r.release_id: r.reference_release for r in releases}
    todo = list(protected)
    while todo:
        ref = refs.get(todo.pop())
        if ref and ref not in protected:
            protected.add(ref)
            todo.append(ref)
    cutoff = now - timedelta(days=days)
    ids, since = [], []
    for newer, older in zip(releases, releases[1:], strict=False):
        # `older` was superseded when `newer` was written.
        if older.release_id in protected or older.cubes_removed_at is not None:
            continue
        if newer.created_at <= cutoff:
            ids.append(older.release_id)
            since.append(newer.created_at)
    if not ids:
        return None
    return DueItem("superseded_cubes", len(ids), min(since), releases=tuple(ids))


def apply(items: list[DueItem], *, store: Store | None, actor: str) -> dict[str, int]:
    """Delete every due item; one audit entry per category with its count. Returns the
    counts deleted per category."""
    deleted: dict[str, int] = {}
    for item in items:
        n = 0
        if item.paths:
            for path in item.paths:
                if path.exists():
                    path.unlink()
                    n += 1
            for folder in {p.parent for p in item.paths}:
                _remove_empty(folder)
        elif item.category == "superseded_cubes" and store is not None:
            for release_id in item.releases:
                store.remove_release_data(release_id)
                n += 1
        elif item.category == "audit_log" and store is not None and item.audit_before:
            n = store.delete_audit_before(item.audit_before)
        deleted[item.category] = n
        if store is not None:
            detail: dict[str, object] = {"category": item.category, "count": n}
            if item.releases:
                detail["releases"] = list(item.releases)
            store.audit(actor, "retention_deleted", detail)
    return deleted


def _remove_empty(folder: Path) -> None:
    try:
        if folder.is_dir() and not any(folder.iterdir()):
            os.rmdir(folder)
    except OSError:
        return
