"""A run's ``SHA256SUMS``: ``sha256sum -c`` lines for every output the run leaves current.

Paths are relative to the project root (``cd PROJECT && sha256sum -c .repropack/runs/RUN/SHA256SUMS``).
A folder output is listed file by file (``sha256sum`` knows no folders); its links are not listed
(their target texts are in the folder's tree digest in the results).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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


def sums_bytes(entries: Mapping[str, str]) -> bytes:
    """The file's bytes (written whole by ``RecordsWriter.write_whole``)."""
    return format_checksums(entries).encode("utf-8", "surrogateescape")
