"""Clean-up of a project's run records, caches and stale environments (``repropack clean``).

Evidence is kept: a run whose records an up-to-date result rests on (the run of the journal's
latest ``done`` of an instance, see :func:`repropack.run.lookup.evidence_runs`) is never
removed. Of a format-1 run only those instances' folders (and ``run.json``) are kept; a
format-2 run is a handful of files and is kept whole. So ``status``, ``logs`` and ``verify``
still show a cached instance's script, metrics, streams and digests after any clean.

Retention: the ``keep`` newest runs stay (default 1: the last run); ``older_than`` (seconds)
limits removal to runs that started longer ago than that. ``everything`` (``--all``) keeps no
run but the evidence and also removes the hash and SIF caches.
"""

from __future__ import annotations

import calendar
import os
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Removal:
    path: Path
    files: int
    bytes: int


@dataclass
class CleanReport:
    removed: list[Removal] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)  # (path, why it was kept)

    @property
    def files(self) -> int:
        return sum(r.files for r in self.removed)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.removed)


def clean(root: Path, *, everything: bool = False, dry_run: bool = False, keep: int | None = None,
          older_than: float | None = None, now: float | None = None) -> CleanReport:
    """What was (or, with ``dry_run``, would be) removed and what was kept as evidence.

    Keeps the journal (it is what makes reruns free) and the records of the ``keep`` newest runs,
    but not the outputs their failed attempts left half-written nor their scratch folders (a full disk).
    """
    from repropack.run import rundir
    from repropack.run.environments import ENVS_DIR, SIF_CACHE
    from repropack.run.lookup import evidence_runs
    from repropack.run.statefiles import check_state

    check_state(root)  # a .repropack (or a folder in it) that is a link is refused: nothing outside is removed
    keep = (0 if everything else 1) if keep is None else keep
    now = time.time() if now is None else now
    evidence: dict[str, set[str]] = {}
    for iid, run_id in evidence_runs(root).items():
        evidence.setdefault(run_id, set()).add(iid)
    report = CleanReport()
    targets: list[Path] = []
    ids = _run_ids(root)
    newest = set(ids[len(ids) - keep:]) if keep > 0 else set()
    for run_id in ids:
        path = rundir.runs_root(root) / run_id
        if run_id in newest:
            report.kept.append((path, f"one of the {keep} newest run(s)"))
            targets += rundir.leftovers(path)
        elif older_than is not None and now - _started(path) < older_than:
            report.kept.append((path, "newer than --older-than"))
            targets += rundir.leftovers(path)
        elif run_id in evidence:
            targets += _beside_evidence(root, path, evidence[run_id], report)
        else:
            targets.append(path)
    if everything:
        targets += [p for p in (root / SIF_CACHE, root / ".repropack" / "cache" / "filehash.json") if p.exists()]
        if (rundir.runs_root(root) / "latest").exists() and keep == 0:
            targets.append(rundir.runs_root(root) / "latest")
    targets += stale_envs(root / ENVS_DIR, root)
    _remove(root, targets, report, dry_run)
    return report


def _run_ids(root: Path) -> list[str]:
    from repropack.run.records.reader import run_ids

    return run_ids(root)


def _started(path: Path) -> float:
    """A run's start: its id's UTC stamp (``20261202T034451Z-...``), else its folder's mtime."""
    try:
        return float(calendar.timegm(time.strptime(path.name[:16], "%Y%m%dT%H%M%SZ")))
    except ValueError:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0


def _beside_evidence(root: Path, path: Path, ids: set[str], report: CleanReport) -> list[Path]:
    """What may go from a run that holds evidence: format 1, every folder but run.json and the
    evidence instances'; format 2, only what any finished run no longer needs."""
    from repropack.errors import FormatVersionError
    from repropack.run import rundir
    from repropack.run.records.reader import run_format

    report.kept.append((path, f"evidence of {len(ids)} up-to-date instance(s)"))
    try:
        version, _ = run_format(path)
    except FormatVersionError:
        return []  # a newer repropack wrote it: leave it whole
    if version >= 2:
        return rundir.leftovers(path)
    wanted = {rundir.instance_dirname(iid) for iid in ids}
    targets = []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name not in wanted:
                targets.append(Path(entry.path))
    return targets + [p for p in rundir.leftovers(path) if p.parent.parent.name in wanted]


def _remove(root: Path, targets: list[Path], report: CleanReport, dry_run: bool) -> None:
    from repropack.run.safepath import ProjectTree

    with ProjectTree(root, strict=True) as tree:
        for path in targets:
            files, size = _count(path)
            if not dry_run:
                tree.remove(os.path.relpath(path, root))  # a link is removed itself, never followed
            report.removed.append(Removal(path, files, size))


def _count(path: Path) -> tuple[int, int]:
    if not path.is_dir() or path.is_symlink():
        try:
            return 1, path.lstat().st_size
        except OSError:
            return 0, 0
    files = size = 0
    for base, _, names in os.walk(path):
        for name in names:
            try:
                size += os.lstat(os.path.join(base, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def stale_envs(envs: Path, root: Path) -> list[Path]:
    """Environment folders the manifest no longer names (none when it cannot be read)."""
    if not envs.is_dir():
        return []
    try:
        from repropack.manifest import load_manifest

        wanted = set(load_manifest(root).environments)
    except Exception:  # an unreadable manifest must not make clean delete environments
        return []
    with os.scandir(envs) as entries:
        return sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and e.name not in wanted)
