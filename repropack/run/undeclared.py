"""Files that appear in the project during a host run without being declared outputs.

Containers mount the project read-only, so an undeclared write fails there; on
the host it cannot be prevented, so it is found and reported: the project's
files are listed (names and inodes only, no hashing) before the first host step
starts and again after the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = frozenset({".repropack", ".git", ".hg", ".svn", "__pycache__", ".venv"})


def _walk(root: Path) -> set[str]:
    found: set[str] = set()
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = os.scandir(root / rel if rel else root)
        except OSError:
            continue
        with entries:
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        stack.append(name)
                else:
                    found.add(name)
    return found


@dataclass
class Snapshot:
    files: set[str]

    @classmethod
    def take(cls, root: Path) -> Snapshot:
        return cls(_walk(root))

    def new_files(self, root: Path, declared: Iterable[str]) -> list[str]:
        declared_set = set(declared)
        fresh = _walk(root) - self.files
        return sorted(p for p in fresh if p not in declared_set and not _under_declared_dir(p, declared_set))


def _under_declared_dir(path: str, declared: set[str]) -> bool:
    parts = path.split("/")
    return any("/".join(parts[:n]) in declared for n in range(1, len(parts)))
