"""The archive format, version 1.

A tar stream (POSIX pax headers, UTF-8 names) compressed as one zstd frame sequence::

    repropack-archive.json       {"format": 1, "tool": "repropack"}: first, so a newer format stops at once
    project/...                  the manifest, locks, workflow files (and inputs with --with-inputs)
    cache/artifacts/sha256/...   every locked package, laid out as the repropack cache
    images/...                   docker-save archive, SIF, the build record
    records/<run-id>/...         the run's records, provenance crate and SBOM
    published/SHA256SUMS         the digests the rerun compares with (published/outputs/ with --with-outputs)
    INDEX.json                   format, parts, and the sha256 and size of every member above
    INDEX.json.sig               (signed archives) ssh-keygen -Y signature of INDEX.json, namespace repropack

The index comes last so that packing reads every file once (hashing while compressing). Readers
hash each member as it streams and compare at the end; extraction goes to a staging folder that
is moved into place only once the index matched.

Every header field that could carry the packing machine's state is fixed: mtime 0, uid/gid 0,
no user or group names, mode 0644 or 0755 (from the owner's execute bit, never the umask),
members sorted by name, names encoded as UTF-8 whatever the locale.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = 1
MARKER = "repropack-archive.json"
INDEX = "INDEX.json"
SIGNATURE = "INDEX.json.sig"
RESERVED = frozenset({MARKER, INDEX, SIGNATURE})
SIGN_NAMESPACE = "repropack"
SUFFIX = ".tar.zst"
ENCODING = "utf-8"
ZSTD_LEVEL = 3  # zstd's own default: the peer (`zstd -T0`) compresses at this level too

PARTS = ("project", "inputs", "packages", "images", "records", "outputs", "published")


@dataclass(frozen=True)
class Entry:
    """One member as the index lists it."""

    path: str
    sha256: str
    size: int
    part: str
    executable: bool = False
    link: str | None = None  # a symbolic link's target (relative, inside the archive)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size, "part": self.part}
        if self.executable:
            out["executable"] = True
        if self.link is not None:
            out["link"] = self.link
        return out


def marker_bytes() -> bytes:
    return canonical({"format": FORMAT_VERSION, "tool": "repropack"})


def canonical(data: Any) -> bytes:
    """The one JSON encoding of archive metadata: sorted keys, no floats from clocks, a final newline."""
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode(ENCODING)


def tar_header(name: str, size: int, *, executable: bool = False, link: str | None = None,
               directory: bool = False) -> bytes:
    """A pax header block for ``name`` with every machine-dependent field fixed."""
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type, info.mode, info.size = tarfile.DIRTYPE, 0o755, 0
    elif link is not None:
        info.type, info.linkname, info.mode, info.size = tarfile.SYMTYPE, link, 0o777, 0
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, 0o755 if executable else 0o644, size
    return info.tobuf(tarfile.PAX_FORMAT, ENCODING, "surrogateescape")


def padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)
