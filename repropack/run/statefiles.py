"""State files under ``.repropack/``: opened without following any link, regular files only.

A journal, lock, hash cache or ``latest`` marker that is a link (or a ``.repropack`` that is
one) would make repropack append to, truncate or read a file elsewhere; each is refused
with one line naming it. Reached through :class:`~repropack.run.safepath.ProjectTree` with
``strict=True``: no component of the path may be a link.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from repropack.run.safepath import ProjectTree, open_regular

STATE_DIR = ".repropack"
# What repropack keeps under .repropack/: checked before a command reads or writes any of it.
STATE_FILES = ("journal.jsonl", "run.lock", "cache/filehash.json", "runs/latest", "builds/latest.json")
STATE_DIRS = ("runs", "cache", "cache/sif", "envs", "builds", "reports")


def open_state(path: Path | str, flags: int, mode: int = 0o644) -> int:
    """Open a state file (``<project>/.repropack/...``): no link in any component, a regular file only.

    With O_CREAT its folders are made. A path outside any .repropack/ (a test's own store) is
    opened without following a link at its last component.
    """
    path = Path(path)
    parts = path.parts
    if STATE_DIR not in parts[:-1]:
        return open_regular(str(path), flags, mode)
    at = len(parts) - 1 - parts[-2::-1].index(STATE_DIR) - 1
    with ProjectTree(Path(*parts[:at]), strict=True) as tree:
        return tree.open_file("/".join(parts[at:]), flags, mode, make_dirs=bool(flags & os.O_CREAT))


def check_state(root: Path | str) -> None:
    """Refuse a .repropack/ that is a link, holds a link (or a non-file) where a state file belongs,
    or a link where one of its folders belongs: before anything is read or written there."""
    with ProjectTree(root, strict=True) as tree:
        top = tree.lstat(STATE_DIR)
        if top is None:
            return
        if not stat.S_ISDIR(top.st_mode):
            os.close(tree.open_dir(STATE_DIR))  # raises, naming the link or the file
        for rel in STATE_DIRS:
            try:
                os.close(tree.open_dir(f"{STATE_DIR}/{rel}"))
            except FileNotFoundError:
                pass
        for rel in STATE_FILES:
            try:
                os.close(tree.open_file(f"{STATE_DIR}/{rel}", os.O_RDONLY))
            except FileNotFoundError:
                pass
