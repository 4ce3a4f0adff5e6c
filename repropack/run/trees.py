"""Folder outputs: their digest, and the symbolic links they may hold.

A folder output is walked without following links. A link inside it is kept and recorded as
a link (its target text enters the digest, the file behind it does not): so a link may only
point, relatively, at something that exists inside the same folder, where it still points
after the folder is moved into place. Anything else (an absolute target, a target outside the
folder, a dangling link) is refused: publishing it would hand the next step, or the next
user, a path into somewhere repropack never checked.
"""

from __future__ import annotations

import os
from pathlib import Path

from repropack.run.checksums import sha256_files
from repropack.run.keys import files_digest


def tree_entries(path: Path | str) -> tuple[list[str], dict[str, str]]:
    """(regular files, link -> target) under ``path``, relative to it, no link followed."""
    files: list[str] = []
    links: dict[str, str] = {}
    base = os.fspath(path)
    for folder, dirs, names in os.walk(base, followlinks=False):
        rel_dir = os.path.relpath(folder, base)
        for name in dirs + names:
            full = os.path.join(folder, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if os.path.islink(full):
                links[rel] = os.readlink(full)
            elif name in names and os.path.isfile(full):
                files.append(rel)
    return sorted(files), links


def link_problem(tree: Path | str, rel: str, target: str) -> str | None:
    """Why the link ``rel`` (to ``target``) inside the folder ``tree`` may not be published."""
    if os.path.isabs(target):
        return f"is a symbolic link to the absolute path {target!r}"
    real_tree = os.path.realpath(tree)
    real = os.path.realpath(os.path.join(tree, rel))
    if os.path.commonpath([real_tree, real]) != real_tree:
        return f"is a symbolic link to {target!r}, outside the folder output"
    if not os.path.exists(real):
        return f"is a symbolic link to {target!r}, which does not exist"
    return None


def tree_problem(tree: Path | str, shown: str) -> str | None:
    """The first link in folder output ``tree`` (called ``shown`` in messages) that may not be published."""
    _, links = tree_entries(tree)
    for rel in sorted(links):
        problem = link_problem(tree, rel, links[rel])
        if problem:
            return f"{shown}/{rel} {problem}"
    return None


def tree_digest(path: Path) -> str:
    """``tree:`` + one digest over every file's sha256 and every link's target (links not followed)."""
    files, links = tree_entries(path)
    digests = dict(zip(files, sha256_files([os.path.join(path, r) for r in files])))
    # a link's target text, hex so that any name is ascii: a retargeted link is a changed tree
    digests.update({rel: "link:" + target.encode("utf-8", "surrogateescape").hex() for rel, target in links.items()})
    return "tree:" + files_digest(digests)
