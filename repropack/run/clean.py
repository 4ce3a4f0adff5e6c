"""Clean-up of a project's run records, caches and stale environments (``repropack clean``)."""

from __future__ import annotations

import os
from pathlib import Path


def clean(root: Path, *, everything: bool = False, dry_run: bool = False) -> list[tuple[Path, int]]:
    """What was (or would be) removed, with sizes. Keeps the journal: it is what makes reruns free,
    and the last run's records and logs, but not the outputs its failed attempts left (a full disk)."""
    from repropack.run import rundir
    from repropack.run.environments import ENVS_DIR, SIF_CACHE
    from repropack.run.safepath import ProjectTree
    from repropack.run.statefiles import check_state

    check_state(root)  # a .repropack (or a folder in it) that is a link is refused: nothing outside is removed
    runs = rundir.runs_root(root)
    latest = rundir.latest_run(root)
    targets: list[Path] = []
    if runs.is_dir():
        for entry in sorted(runs.iterdir()):
            if entry.name == "latest" or (entry.name == latest and not everything):
                continue
            targets.append(entry)
    if latest and not everything:
        targets += rundir.leftovers(runs / latest)
    if everything:
        targets += [p for p in (root / SIF_CACHE, root / ".repropack" / "cache" / "filehash.json") if p.exists()]
        if latest:
            targets.append(runs / "latest")
    targets += stale_envs(root / ENVS_DIR, root)
    removed = []
    with ProjectTree(root, strict=True) as tree:
        for path in targets:
            size = rundir.dir_size(path) if path.is_dir() and not path.is_symlink() else path.lstat().st_size
            if not dry_run:
                tree.remove(os.path.relpath(path, root))  # a link is removed itself, never followed
            removed.append((path, size))
    return removed


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
