"""A sentinel tree: every file, folder and link under a folder with its inode, size, mtime and sha256,
so a test can show that a command changed nothing it was not allowed to change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SKIP = frozenset({".repropack"})  # the runner's own state; tests read it through commands


def snapshot(root: Path, skip: frozenset[str] = SKIP) -> dict[str, tuple]:
    """path -> (kind, inode, size, mtime_ns, sha256 or link target), links never followed;
    ``skip``: folders (relative to ``root``) left out."""
    found: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(folder, root)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(path)
            if os.path.islink(path):
                found[rel] = ("link", st.st_ino, st.st_size, st.st_mtime_ns, os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("dir", st.st_ino, 0, 0, "")  # a folder's mtime changes when a sibling is made
            else:
                found[rel] = ("file", st.st_ino, st.st_size, st.st_mtime_ns,
                              hashlib.sha256(Path(path).read_bytes()).hexdigest())
    return found


def changed(before: dict[str, tuple], after: dict[str, tuple]) -> set[str]:
    """Paths added, removed or different between two snapshots."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def one_line_error(stderr: str) -> bool:
    """A user error: no traceback, and something was said."""
    return "Traceback" not in stderr and bool(stderr.strip())
