"""Writing an archive: deterministic tar members streamed through multi-threaded zstd.

Why ``zstandard`` (python-zstandard, the binding the zstd project links to and conda itself uses
for ``.conda`` packages): it exposes libzstd's multi-threaded streaming compressor, releases the GIL
while compressing (so hashing and compression overlap), and its output for a given level does
not depend on the number of worker threads (libzstd's multi-threaded mode cuts jobs by size, not
by thread count), which the determinism tests check with 1 and 2 threads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from repropack.archive import format as fmt
from repropack.errors import ArchiveError

CHUNK = 1 << 20

Progress = Callable[[int], None]  # bytes of member content written so far (an increment)
Signer = Callable[[bytes], bytes]  # index bytes -> signature bytes


@dataclass(frozen=True)
class Source:
    """A member to write: from a file on disk, from bytes, or a symbolic link."""

    path: str  # name inside the archive (posix, relative)
    part: str
    file: Path | None = None
    data: bytes | None = None
    executable: bool = False
    link: str | None = None

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.file is not None:
            return os.stat(self.file).st_size
        return 0


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def write_archive(out: BinaryIO, sources: Iterable[Source], *, threads: int | None = None,
                  extra_index: dict | None = None, signer: Signer | None = None,
                  progress: Progress = lambda _n: None) -> dict:
    """Write every source (sorted by name) then the index (and signature); returns the index."""
    import zstandard

    members = _sorted_unique(sources)
    # threads >= 1 always: libzstd's single-threaded mode (0) frames differently from its MT mode.
    compressor = zstandard.ZstdCompressor(level=fmt.ZSTD_LEVEL, threads=max(1, threads or default_threads()))
    entries: list[fmt.Entry] = []
    with compressor.stream_writer(out, closefd=False) as zout:
        marker = fmt.marker_bytes()
        _write_bytes(zout, fmt.MARKER, marker)
        for source in members:
            entries.append(_write_member(zout, source, progress))
        index = build_index(entries, extra_index or {})
        index_bytes = fmt.canonical(index)
        _write_bytes(zout, fmt.INDEX, index_bytes)
        if signer is not None:
            _write_bytes(zout, fmt.SIGNATURE, signer(index_bytes))
        zout.write(fmt.END_OF_ARCHIVE)
    return index


def build_index(entries: list[fmt.Entry], extra: dict) -> dict:
    parts: dict[str, dict[str, int]] = {}
    for entry in entries:
        part = parts.setdefault(entry.part, {"files": 0, "bytes": 0})
        part["files"] += 1
        part["bytes"] += entry.size
    return {**extra, "format": fmt.FORMAT_VERSION, "tool": "repropack",
            "members": [e.as_json() for e in entries], "parts": parts}


def _sorted_unique(sources: Iterable[Source]) -> list[Source]:
    by_name: dict[str, Source] = {}
    for source in sources:
        if source.path in fmt.RESERVED or source.path in by_name:
            raise ArchiveError(f"{source.path}: listed twice (or a reserved name) while packing")
        by_name[source.path] = source
    # sorted by the UTF-8 bytes of the name: the same order whatever the locale's collation
    return [by_name[name] for name in sorted(by_name, key=lambda n: n.encode(fmt.ENCODING, "surrogateescape"))]


def _write_bytes(zout, name: str, data: bytes, executable: bool = False) -> None:
    zout.write(fmt.tar_header(name, len(data), executable=executable))
    zout.write(data)
    zout.write(fmt.padding(len(data)))


def _write_member(zout, source: Source, progress: Progress) -> fmt.Entry:
    if source.link is not None:
        zout.write(fmt.tar_header(source.path, 0, link=source.link))
        return fmt.Entry(source.path, hashlib.sha256(source.link.encode()).hexdigest(), 0, source.part,
                         link=source.link)
    if source.data is not None:
        _write_bytes(zout, source.path, source.data, source.executable)
        progress(len(source.data))
        return fmt.Entry(source.path, hashlib.sha256(source.data).hexdigest(), len(source.data), source.part,
                         executable=source.executable)
    return _write_file(zout, source, progress)


def _write_file(zout, source: Source, progress: Progress) -> fmt.Entry:
    assert source.file is not None
    digest = hashlib.sha256()
    fd = os.open(source.file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        zout.write(fmt.tar_header(source.path, size, executable=source.executable))
        done = 0
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while done < size:
            n = os.readv(fd, [view[: min(CHUNK, size - done)]])
            if n == 0:
                raise ArchiveError(f"{source.file}: shrank while being packed (from {size} to {done} bytes)")
            chunk = view[:n]
            digest.update(chunk)
            zout.write(chunk)
            done += n
            progress(n)
    finally:
        os.close(fd)
    zout.write(fmt.padding(size))
    return fmt.Entry(source.path, digest.hexdigest(), size, source.part, executable=source.executable)


def tree_sources(root: Path, prefix: str, part: str) -> list[Source]:
    """Every regular file and inside-pointing link beneath ``root``, named ``prefix/<relative path>``.

    Anything else (a FIFO, a socket, a link leading out of ``root``) is refused by name: an archive
    meant for strangers must not silently drop or follow it.
    """
    import stat

    root = Path(root)
    out: list[Source] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(directory, d))]:
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            arcname = f"{prefix}/{rel}" if prefix else rel
            if stat.S_ISREG(st.st_mode):
                out.append(Source(arcname, part, file=path, executable=bool(st.st_mode & 0o100)))
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                from repropack.archive.safety import link_target_problem

                if link_target_problem(rel, target):
                    raise ArchiveError(f"{path}: a link to {target!r}, which leads outside {root}; not packed")
                out.append(Source(arcname, part, link=target))
            else:
                raise ArchiveError(f"{path}: neither a file nor a link (mode {st.st_mode:o}); not packed")
    return out
