"""Reading an archive as a stream: every member checked (:mod:`.safety`) and hashed as it passes,
the whole compared with the index at the end.

One pass, no seeking: the same code serves ``verify`` (content thrown away) and ``unpack`` (content
written to a staging folder by a sink). A truncated stream, a member the index does not list (or
lists twice, or with another digest), a missing index or a newer format are each one
:class:`~repropack.errors.ArchiveError` naming the archive and the member.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from repropack.archive import format as fmt
from repropack.archive.safety import RATIO_GRACE, Limits, MemberRules, chained_link_problem
from repropack.errors import ArchiveError, ArchiveVersionError

CHUNK = 1 << 20
METADATA_MAX = 256 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _writer_pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(1, thread_name_prefix="archive-write")


_WRITER = _writer_pool()  # the marker, index and signature are read into memory: cap them


class Sink(Protocol):
    def file(self, name: str, executable: bool) -> Callable[[bytes], None]: ...
    def close_file(self) -> None: ...
    def link(self, name: str, target: str) -> None: ...


class _NullSink:
    def file(self, name: str, executable: bool) -> Callable[[bytes], None]:
        return lambda _chunk: None

    def close_file(self) -> None:
        pass

    def link(self, name: str, target: str) -> None:
        pass


@dataclass
class Contents:
    """What a full read found: the parsed index, its exact bytes, the signature, each member's digest."""

    index: dict
    index_bytes: bytes
    signature: bytes | None
    found: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (sha256, size)
    compressed: int = 0
    uncompressed: int = 0


class _Counting:
    """A read-only file wrapper counting bytes (for the compression-ratio cap)."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n

    def readable(self) -> bool:
        return True


class _Decompressed:
    """The tar stream, decompressed ahead in a thread, checking the ratio of decompressed to compressed
    bytes as it goes.

    libzstd runs with the GIL released, so decompressing the next chunks overlaps hashing and
    writing this one (what ``zstd -dc | tar -x`` gets from being two processes).
    """

    AHEAD = 8  # chunks decompressed ahead (8 MiB at most in memory)

    def __init__(self, stream, compressed: _Counting, limits: Limits, archive: Path):
        import queue
        import threading

        self.stream = stream
        self.compressed = compressed
        self.limits = limits
        self.archive = archive
        self.count = 0
        self.pending = b""
        self.pos = 0
        self.eof = False
        self.queue: queue.Queue = queue.Queue(self.AHEAD)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._ahead, name="archive-decompress", daemon=True)
        self.thread.start()

    def _ahead(self) -> None:
        import queue

        while not self.stopping.is_set():
            try:
                item: object = self.stream.read(CHUNK)
            except Exception as exc:  # zstandard.ZstdError: a damaged frame
                item = exc
            while not self.stopping.is_set():
                try:
                    self.queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()

    def _next(self) -> bool:
        item = self.queue.get()
        if isinstance(item, Exception):
            self.eof = True
            raise ArchiveError(f"not a readable zstd stream ({item}); it is damaged or truncated",
                               archive=self.archive)
        if not item:
            self.eof = True
            return False
        self.pending, self.pos = item, 0
        self.count += len(item)
        if self.count > RATIO_GRACE and self.count > self.limits.max_ratio * max(self.compressed.count, 1):
            raise ArchiveError(f"decompresses more than {self.limits.max_ratio:g} times its size "
                               "(the compression-ratio cap: a decompression bomb?); nothing was extracted",
                               archive=self.archive)
        return True

    def read(self, n: int = -1) -> bytes:
        parts = []
        wanted = n if n >= 0 else float("inf")
        while wanted > 0:
            if self.pos >= len(self.pending) and (self.eof or not self._next()):
                break
            if self.pos == 0 and wanted >= len(self.pending):
                take = self.pending  # the whole chunk: no copy
            elif wanted == float("inf"):
                take = self.pending[self.pos:]
            else:
                take = self.pending[self.pos:self.pos + wanted]
            self.pos += len(take)
            wanted -= len(take)
            parts.append(take)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def read_archive(path: Path, *, limits: Limits = Limits(), sink: Sink | None = None,
                 progress: Callable[[int], None] = lambda _n: None) -> Contents:
    """Stream the whole archive through ``sink``; returns its contents once the index matched."""
    import zstandard

    path = Path(path)
    sink = sink or _NullSink()
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise ArchiveError(f"cannot be read: {exc.strerror}", archive=path) from None
    with raw:
        if raw.read(4) != ZSTD_MAGIC:
            raise ArchiveError("is not a zstd-compressed repropack archive", archive=path)
        raw.seek(0)
        counting = _Counting(raw)
        stream = zstandard.ZstdDecompressor().stream_reader(counting, read_across_frames=True, closefd=False)
        tar_stream = _Decompressed(stream, counting, limits, path)
        try:
            try:
                tar = tarfile.open(fileobj=tar_stream, mode="r|", encoding=fmt.ENCODING, errors="surrogateescape",
                                   bufsize=CHUNK)
            except tarfile.TarError as exc:
                raise ArchiveError(f"is truncated or not a repropack archive ({exc})", archive=path) from None
            contents = _walk(tar, path, limits, sink, progress)
        finally:
            tar_stream.close()
        contents.compressed, contents.uncompressed = counting.count, tar_stream.count
    check_index(contents, path)
    return contents


def _walk(tar: tarfile.TarFile, path: Path, limits: Limits, sink: Sink, progress) -> Contents:
    rules = MemberRules(limits)
    meta: dict[str, bytes] = {}
    found: dict[str, tuple[str, int]] = {}
    first = True
    try:
        for info in tar:
            name = info.name
            if first:
                _check_marker(tar, info, path)
                first = False
                continue
            if name in fmt.RESERVED:
                if name in meta or name == fmt.MARKER:
                    raise ArchiveError("appears twice", archive=path, member=name)
                meta[name] = _read_small(tar, info, path)
                continue
            if fmt.INDEX in meta:
                raise ArchiveError("follows the index (the index must be last)", archive=path, member=name)
            rules.check(info)
            found[name] = _consume(tar, info, sink, progress)
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"is truncated or damaged ({exc})", archive=path) from None
    if first:
        raise ArchiveError("is empty or not a repropack archive", archive=path)
    chained = chained_link_problem(rules.links)
    if chained is not None:
        raise ArchiveError(f"member {chained[1]}; nothing was extracted", archive=path, member=chained[0])
    if fmt.INDEX not in meta:
        raise ArchiveError("has no index: it is truncated or was not written by repropack pack", archive=path)
    index_bytes = meta[fmt.INDEX]
    try:
        index = json.loads(index_bytes)
    except ValueError as exc:
        raise ArchiveError(f"is not valid JSON ({exc})", archive=path, member=fmt.INDEX) from None
    return Contents(index, index_bytes, meta.get(fmt.SIGNATURE), found)


def _check_marker(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> None:
    if info.name != fmt.MARKER or not info.isreg():
        raise ArchiveError(f"is not a repropack archive (its first member is {info.name!r}, not {fmt.MARKER})",
                           archive=path)
    try:
        marker = json.loads(_read_small(tar, info, path))
        version = marker["format"]
    except (ValueError, KeyError, TypeError):
        raise ArchiveError("is not valid", archive=path, member=fmt.MARKER) from None
    if not isinstance(version, int) or version > fmt.FORMAT_VERSION:
        raise ArchiveVersionError(path, version, fmt.FORMAT_VERSION)


def _read_small(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> bytes:
    if not info.isreg() or info.size > METADATA_MAX:
        raise ArchiveError("is not a small regular file", archive=path, member=info.name)
    handle = tar.extractfile(info)
    data = handle.read() if handle is not None else b""
    if len(data) != info.size:
        raise ArchiveError("is truncated", archive=path, member=info.name)
    return data


def _consume(tar: tarfile.TarFile, info: tarfile.TarInfo, sink: Sink, progress) -> tuple[str, int]:
    if info.issym():
        sink.link(info.name, info.linkname)
        return hashlib.sha256(info.linkname.encode(fmt.ENCODING, "surrogateescape")).hexdigest(), 0
    digest = hashlib.sha256()
    write = sink.file(info.name, bool(info.mode & 0o100))
    handle = tar.extractfile(info)
    done = 0
    writing = None  # the previous chunk's write, overlapping this chunk's read and hash (both drop the GIL)
    try:
        while handle is not None:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            if writing is not None:
                writing.result()
            writing = _WRITER.submit(write, chunk)
            done += len(chunk)
            progress(len(chunk))
    finally:
        if writing is not None:
            writing.result()
        sink.close_file()
    if done != info.size:
        raise EOFError(f"{info.name} ends after {done} of {info.size} bytes")
    return digest.hexdigest(), done


def check_index(contents: Contents, path: Path) -> None:
    """The index and the members agree exactly: same names, each once, same sha256 and size."""
    index = contents.index
    version = index.get("format") if isinstance(index, dict) else None
    if not isinstance(version, int) or not isinstance(index.get("members"), list):
        raise ArchiveError("has no format version or member list", archive=path, member=fmt.INDEX)
    if version > fmt.FORMAT_VERSION:
        raise ArchiveVersionError(path, version, fmt.FORMAT_VERSION)
    listed: dict[str, dict] = {}
    for entry in index["members"]:
        name = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise ArchiveError(f"lists a member without a path: {entry!r}", archive=path, member=fmt.INDEX)
        if name in listed:
            raise ArchiveError(f"lists {name} twice", archive=path, member=fmt.INDEX)
        listed[name] = entry
    for name, entry in listed.items():
        if name not in contents.found:
            raise ArchiveError(f"lists {name}, which the archive does not hold", archive=path, member=fmt.INDEX)
        sha, size = contents.found[name]
        if sha != entry.get("sha256") or (entry.get("link") is None and size != entry.get("size")):
            raise ArchiveError(f"content does not match the index (sha256 {sha}, {size} bytes; the index says "
                               f"{entry.get('sha256')}, {entry.get('size')} bytes)", archive=path, member=name)
    for name in contents.found:
        if name not in listed:
            raise ArchiveError("is not listed in the index", archive=path, member=name)
