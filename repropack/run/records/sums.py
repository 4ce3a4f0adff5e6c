"""A run's ``SHA256SUMS``: ``sha256sum -c`` lines for every output the run leaves current.

Paths are relative to the project root (``cd PROJECT && sha256sum -c .repropack/runs/RUN/SHA256SUMS``).
A folder output is listed file by file (``sha256sum`` knows no folders); its links are not listed
(their target texts are in the folder's tree digest in the results).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from repropack.run.checksums import format_checksums, sha256_beneath
from repropack.run.safepath import ProjectTree, UnsafePath


def sums_entries(tree: ProjectTree, outputs: Mapping[str, str]) -> dict[str, str]:
    """Project path -> hex for each output (path -> recorded digest); folders expanded to their files,
    read beneath the project root (a folder swapped for a link leading out is left out)."""
    entries: dict[str, str] = {}
    folders: list[str] = []
    for path, digest in outputs.items():
        if digest.startswith("tree:"):
            folders.append(path)
        elif digest:
            entries[path] = digest
    for folder in folders:
        try:
            files = _files_under(tree, folder)
            entries.update(zip(files, sha256_beneath(tree, files)))
        except (OSError, UnsafePath):
            continue
    return entries


def _files_under(tree: ProjectTree, folder: str) -> list[str]:
    from repropack.run.trees import tree_entries

    fd = tree.open_dir(folder)
    try:
        files, _ = tree_entries(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return [f"{folder}/{rel}" for rel in files]


def write_sums(path: Path, entries: Mapping[str, str] | Iterable[tuple[str, str]], opener) -> None:
    """Write ``sha256sum`` text to ``path`` through ``opener(path) -> fd`` (the run folder's
    link-refusing open), whole: a temporary name, then a rename."""
    tmp = path.with_name(path.name + ".tmp")
    data = format_checksums(entries).encode("utf-8", "surrogateescape")
    fd = opener(str(tmp))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
