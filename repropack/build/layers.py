"""Deterministic layer tars.

A layer's bytes depend only on the paths, types, normalized modes, link targets
and contents of what goes in, never on the host that staged it: entries are
sorted, every mtime is the lock's SOURCE_DATE_EPOCH, owners are 0:0 with no
names, and modes are reduced to 0755/0644 (directories and executables / the
rest), so neither the umask nor the checkout time leaks into a digest. The
same bytes then give the same diff_id, the same deterministic gzip blob and
therefore the same image ID and pushed digest on every rebuild.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from repropack.errors import BuildError

CHUNK = 1 << 20
GZIP_LEVEL = 6  # fixed: the pushed blob digests depend on it


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a layer: ``arcname`` is relative to the image root (no leading slash)."""

    arcname: str
    kind: str  # "dir" | "file" | "symlink" | "hardlink"
    source: Path | None = None  # host file for "file"
    target: str = ""  # link target for "symlink" / the arcname it repeats for "hardlink"
    executable: bool = False


@dataclass(frozen=True, slots=True)
class LayerInfo:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    size: int


def normalize_arcname(path: str) -> str:
    """``/opt/envs/x`` or ``./opt/envs/x`` -> ``opt/envs/x``; refuses ``..`` escapes."""
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".")]
    if not parts or ".." in parts:
        raise BuildError(f"invalid path for an image layer: {path!r}")
    return "/".join(parts)


def tree_entries(root: Path, target: str) -> list[Entry]:
    """Every path under ``root``, placed under ``target`` in the image.

    Symlinks are kept as links (never followed); files sharing an inode inside
    the tree become hardlinks to the first of them in sorted order.
    """
    base = normalize_arcname(target)
    pairs: list[tuple[str, Path]] = [(base, root)]
    for directory, dirnames, filenames in os.walk(root):
        rel = Path(directory).relative_to(root)
        pairs += [(f"{base}/{(rel / name).as_posix()}", Path(directory) / name) for name in dirnames + filenames]
    return file_entries(pairs)


def file_entries(pairs: Iterable[tuple[str, Path]]) -> list[Entry]:
    """Entries for explicit (arcname, host path) pairs, plus their parent directories."""
    by_name: dict[str, Entry] = {}
    seen_inodes: dict[tuple[int, int], str] = {}
    for arcname, path in sorted((normalize_arcname(a), p) for a, p in pairs):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entry = Entry(arcname, "symlink", target=os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            entry = Entry(arcname, "dir")
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            first = seen_inodes.get(key) if st.st_nlink > 1 else None
            if first is not None:
                entry = Entry(arcname, "hardlink", target=first)
            else:
                seen_inodes[key] = arcname
                entry = Entry(arcname, "file", source=path, executable=bool(st.st_mode & 0o111))
        else:
            raise BuildError(f"{path}: only files, directories and symlinks can go into an image layer")
        by_name[arcname] = entry
    for arcname in list(by_name):
        parent = PurePosixPath(arcname).parent
        while str(parent) != ".":
            by_name.setdefault(str(parent), Entry(str(parent), "dir"))
            parent = parent.parent
    return [by_name[name] for name in sorted(by_name)]


class _HashingWriter(io.RawIOBase):
    """Writes through to a file while hashing and counting the bytes."""

    def __init__(self, out):
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def _tarinfo(entry: Entry, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.arcname)
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif entry.kind == "symlink":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
    elif entry.kind == "hardlink":
        info.type, info.mode, info.linkname = tarfile.LNKTYPE, 0o644, entry.target
    else:
        info.type, info.mode = tarfile.REGTYPE, 0o755 if entry.executable else 0o644
    return info


def write_layer(entries: list[Entry], out: Path, *, epoch: int) -> LayerInfo:
    """Write ``entries`` as an uncompressed tar at ``out`` (atomically) and return its diff_id."""
    tmp = out.with_name(out.name + ".part")
    modes = {e.arcname: e.executable for e in entries if e.kind == "file"}
    try:
        with open(tmp, "wb") as raw:
            writer = _HashingWriter(raw)
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for entry in entries:
                    info = _tarinfo(entry, epoch)
                    if entry.kind == "hardlink":
                        info.mode = 0o755 if modes.get(entry.target) else 0o644
                    if entry.kind == "file":
                        _add_file(tar, info, entry.source)
                    else:
                        tar.addfile(info)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return LayerInfo(diff_id="sha256:" + writer.sha.hexdigest(), size=writer.size)


def _add_file(tar: tarfile.TarFile, info: tarfile.TarInfo, source: Path) -> None:
    with open(source, "rb") as fh:
        info.size = os.fstat(fh.fileno()).st_size
        tar.addfile(info, fh)
        if fh.read(1):
            raise BuildError(f"{source} changed while it was being written into a layer")


def copy_hashed(src, dst) -> tuple[str, int]:
    """Copy a stream and return ("sha256:<hex>", size) of what was copied."""
    sha = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        dst.write(chunk)
        sha.update(chunk)
        size += len(chunk)
    return "sha256:" + sha.hexdigest(), size


def gzip_layer(tar_path: Path, out: Path) -> tuple[str, int]:
    """Deterministic gzip (no name, mtime 0, fixed level) of a layer; returns (digest, size).

    Registries address blobs by the digest of these compressed bytes, so they
    must not carry the time or the file name the way ``gzip`` the tool does.
    """
    tmp = out.with_name(out.name + ".part")
    try:
        with open(tar_path, "rb") as src, open(tmp, "wb") as raw:
            writer = _HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=writer, compresslevel=GZIP_LEVEL, mtime=0) as gz:
                while chunk := src.read(CHUNK):
                    gz.write(chunk)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return "sha256:" + writer.sha.hexdigest(), writer.size


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()
