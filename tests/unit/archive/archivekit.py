"""Crafting archives by hand, hostile ones included, for the archive tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import zstandard

from repropack.archive import format as fmt


def member(name: str, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    if info.type != tarfile.REGTYPE:
        info.size = 0
        data = b""
    return info, data


def index_for(members: list[tuple[tarfile.TarInfo, bytes]], *, extra_entries=(), drop=()) -> bytes:
    import hashlib

    entries = []
    for info, data in members:
        if info.name in drop:
            continue
        if info.issym():
            entries.append({"path": info.name, "sha256": hashlib.sha256(info.linkname.encode()).hexdigest(),
                            "size": 0, "part": "project", "link": info.linkname})
        else:
            entries.append({"path": info.name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                            "part": "project"})
    entries += list(extra_entries)
    return fmt.canonical({"format": fmt.FORMAT_VERSION, "tool": "repropack", "members": entries, "parts": {}})


def craft(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], *, index: bytes | None = None,
          marker: bytes | None = None, truncate: int | None = None, tail=()) -> Path:
    """A zstd-compressed tar: the marker, ``members`` as given (any type), the index (matching unless given)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        everything = [member(fmt.MARKER, marker if marker is not None else fmt.marker_bytes()), *members,
                      member(fmt.INDEX, index if index is not None else index_for(members)), *tail]
        for info, data in everything:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    blob = zstandard.ZstdCompressor().compress(raw.getvalue())
    if truncate is not None:
        blob = blob[:truncate]
    path.write_bytes(blob)
    return path


def index_json(data: bytes) -> dict:
    return json.loads(data)
