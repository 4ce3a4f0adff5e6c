"""Streaming sha256 of files, in-process and in parallel.

hashlib releases the GIL while it digests a buffer larger than 2 KiB, so a
small thread pool reading 1 MiB blocks scales with cores without spawning
``sha256sum`` (which is about four times slower than OpenSSL here).
Checksum lists use the ``sha256sum`` text format (``<hex>  <path>``) so
that published lists and ours are the same thing.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BLOCK = 1 << 20
# Below this size a thread hop costs more than the hashing it would parallelise.
_SMALL = 256 << 10


def sha256_file(path: str | os.PathLike[str], *, block: int = BLOCK) -> str:
    """Hex sha256 of one file, read in fixed blocks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(block)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _sha256_small(path: str | os.PathLike[str]) -> str:
    """One open, one read, one close: most step outputs are a few bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _SMALL)
        if len(data) < _SMALL:
            return hashlib.sha256(data).hexdigest()
    finally:
        os.close(fd)
    return sha256_file(path)  # it grew since it was measured


def sha256_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    workers: int | None = None,
    sizes: Sequence[int] | None = None,
) -> list[str]:
    """Hex sha256 of each path, in the order given; large files are hashed in parallel.

    `sizes`, when the caller has just stat'ed the files, saves a stat per file.
    """
    workers = workers or default_workers()
    results: list[str | None] = [None] * len(paths)
    big: list[int] = []
    for index, path in enumerate(paths):
        size = sizes[index] if sizes is not None else os.stat(path).st_size
        if size < _SMALL:
            results[index] = _sha256_small(path)
        elif workers == 1:
            results[index] = sha256_file(path)
        else:
            big.append(index)
    if big:
        with ThreadPoolExecutor(max_workers=min(workers, len(big))) as pool:
            for index, hexdigest in zip(big, pool.map(lambda i: sha256_file(paths[i]), big)):
                results[index] = hexdigest
    return results  # type: ignore[return-value]  # every slot was filled


class StreamHasher:
    """Digest of bytes that pass through (a pipe relay), with a byte count."""

    __slots__ = ("_digest", "size")

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._digest.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def format_checksums(entries: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``sha256sum`` text: one ``<hex>  <path>`` line per file, sorted by path."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    lines = []
    for path, hexdigest in sorted(items):
        if "\n" in path or "\\" in path:
            # sha256sum's own escape: a leading backslash marks an escaped name.
            escaped = path.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"\\{hexdigest}  {escaped}\n")
        else:
            lines.append(f"{hexdigest}  {path}\n")
    return "".join(lines)


def parse_checksums(text: str, *, source: str = "<checksums>", root: Path | None = None) -> dict[str, str]:
    """Read ``sha256sum`` text (text or ``*`` binary mode marker) into path -> hex.

    With ``root``, every path must name a file inside that project (see :func:`project_path`);
    each one that does not is refused, naming its line.
    """
    from repropack.errors import VerifyError

    result: dict[str, str] = {}
    refused: list[str] = []
    for number, line in enumerate(_lines(text), start=1):
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        hexdigest, sep, path = body.partition(" ")
        if not sep or len(hexdigest) != 64 or not path or path[0] not in " *":
            raise VerifyError(f"{source}:{number}: not a sha256sum line: {line[:80]!r}")
        path = path[1:]
        if escaped:
            path = path.replace("\\n", "\n").replace("\\\\", "\\")
        try:
            int(hexdigest, 16)
        except ValueError:
            raise VerifyError(f"{source}:{number}: not a sha256 digest: {hexdigest[:80]!r}") from None
        if root is not None:
            rel, problem = project_path(root, path)
            if problem:
                refused.append(f"{source}:{number}: {path!r} {problem}")
                continue
            path = rel
        result[path] = hexdigest.lower()
    if refused:
        more = f" (and {len(refused) - 1} more: " + ", ".join(r.split(": ", 1)[0] for r in refused[1:]) + ")"
        raise VerifyError(refused[0] + (more if len(refused) > 1 else "") + "; nothing was hashed")
    return result


def sha256_beneath(tree: Any, rels: Sequence[str]) -> list[str]:
    """Hex sha256 of each project file, read through a descriptor opened beneath the root.

    What was checked is what is read: a link leading outside the project raises ``UnsafePath``
    (:mod:`repropack.run.safepath`) instead of being followed, and an error names the project path,
    not the descriptor's ``/proc`` name. At most 256 descriptors are open at once.
    """
    out: list[str] = []
    for start in range(0, len(rels), 256):
        chunk = rels[start:start + 256]
        fds: list[int] = []
        try:
            for rel in chunk:
                fds.append(tree.open_beneath(rel))
            names = [f"/proc/self/fd/{fd}" for fd in fds]
            try:
                out.extend(sha256_files(names))
            except OSError as exc:
                if exc.filename in names:
                    raise type(exc)(exc.errno, exc.strerror, chunk[names.index(exc.filename)]) from None
                raise
        finally:
            for fd in fds:
                os.close(fd)
    return out


def project_path(root: Path, path: str) -> tuple[str, str | None]:
    """(normalised path, None) for a path naming something inside the project, else (path, why not).

    Absolute paths, ``..`` components and symbolic links leading outside the project (at any
    component, the last included) are refused: a checksum list must not make ``verify`` read
    host files such as ``/etc/passwd``.
    """
    from repropack.paths import link_escape, normalize, path_problem

    problem = path_problem(path)
    if problem:
        return path, problem
    rel = normalize(path).rstrip("/")
    if not rel:
        return path, "is the project folder itself, not a file in it"
    link = link_escape(root, rel)
    if link is not None:
        return path, f"goes through {link!r}, a symbolic link leading outside the project"
    return rel, None


def _lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def write_checksums(path: Path, entries: Mapping[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(format_checksums(entries), encoding="utf-8")
    os.replace(tmp, path)
