"""``repropack unpack``: extract into a staging folder, move into place only once all is checked.

The staging folder is made inside the target (same file system, so the final moves are renames)
with mode 0700. Members are written with ``O_EXCL | O_NOFOLLOW``; symbolic links are created only
after every file was written and the index matched, so no member can be written through one.
Whatever goes wrong (a refused member, a digest, a truncated stream, an untrusted signature, an
interrupt) removes the staging folder, and the target too when unpack made it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from repropack.archive.reader import Contents, read_archive
from repropack.archive.safety import Limits
from repropack.errors import ArchiveError, UsageError

STAGING_PREFIX = ".repropack-unpack-"


class _StagingSink:
    def __init__(self, root: Path):
        self.root = root
        self.fd: int | None = None
        self.links: list[tuple[str, str]] = []

    def file(self, name: str, executable: bool) -> Callable[[bytes], None]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        self.fd = os.open(path, flags, 0o755 if executable else 0o644)
        fd = self.fd
        return lambda chunk: _write_all(fd, chunk)

    def close_file(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def link(self, name: str, target: str) -> None:
        self.links.append((name, target))

    def make_links(self) -> None:
        for name, target in self.links:
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]


def unpack(archive: Path, target: Path, *, force: bool = False, limits: Limits = Limits(),
           trust: Callable[[Contents], None] = lambda _c: None,
           progress: Callable[[int], None] = lambda _n: None) -> Contents:
    """Extract ``archive`` into ``target``; ``trust`` may refuse the contents (the signature check)."""
    target = Path(target)
    created = _prepare_target(target, force)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
    sink = _StagingSink(staging)
    try:
        contents = read_archive(archive, limits=limits, sink=sink, progress=progress)
        trust(contents)
        sink.make_links()
        _merge(staging, target)
    except BaseException:
        sink.close_file()
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return contents


def _prepare_target(target: Path, force: bool) -> bool:
    """Make the target if absent (True); refuse a non-empty one without ``force``, or a non-folder."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target}: not a folder (unpack writes into a folder)")
    if not target.exists():
        try:
            target.mkdir(parents=False)
        except FileNotFoundError:
            raise UsageError(f"{target.parent}: no such folder") from None
        return True
    leftovers = [p for p in target.iterdir() if not p.name.startswith(STAGING_PREFIX)]
    if leftovers and not force:
        raise UsageError(f"{target}: not empty ({len(leftovers)} entries); pass --force to extract into it anyway")
    return False


def _merge(source: Path, dest: Path) -> None:
    """Move everything from ``source`` into ``dest``: folders merge, anything else is replaced."""
    for entry in sorted(os.listdir(source)):
        src, dst = source / entry, dest / entry
        if not os.path.lexists(dst):
            os.rename(src, dst)
        elif src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
            _merge(src, dst)
        else:
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            else:
                dst.unlink()
            os.rename(src, dst)
    os.rmdir(source)


def staging_leftovers(target: Path) -> list[Path]:
    return [p for p in Path(target).iterdir() if p.name.startswith(STAGING_PREFIX)] if Path(target).is_dir() else []


__all__ = ["ArchiveError", "unpack"]
