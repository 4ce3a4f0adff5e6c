"""Paths inside the project, reached without following a symbolic link out of it.

Every path the runner removes, creates, renames, mounts, hashes or keeps state in is
resolved from an open descriptor of the project root, one component at a time, each
opened with ``O_NOFOLLOW | O_DIRECTORY | O_PATH`` relative to the last: a link at any
component is refused instead of followed, and the operation itself (``unlinkat``,
``mkdirat``, ``renameat``, ``openat``) uses the descriptor that was checked. A string
prefix check would pass ``out/sub/f`` with ``out/sub -> /elsewhere``; resolving a path and
then using its string would race a step that swaps the link in between. Neither happens
with descriptors.

Two rules: *strict* (no link in any component; for what the runner changes: removes,
makes, renames, mounts, state files) and *beneath* (links allowed while every one of them
stays inside the project; for what it only reads and hashes, such as an input that is a
link to another project file). Beneath uses ``openat2(RESOLVE_BENEATH)`` where the kernel
has it (Linux 5.6+), else resolves the link's target and walks the result strictly.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from repropack.errors import RunError

DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SYS_OPENAT2 = 437  # the same number on every architecture (new syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08


class UnsafePath(RunError):
    """A path the runner would act on is, or passes through, a symbolic link or a non-directory."""

    def __init__(self, path: str, component: str, why: str):
        self.path = path
        self.component = component
        self.why = why
        where = path if component == path else f"{path}: {component}"
        super().__init__(f"{where} {why}; repropack does not follow links here (one could lead outside the project)")


def parts_of(rel: str) -> list[str]:
    """The components of a normalised project-relative path; anything else is refused."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(rel, rel, "is not a normalised path inside the project")
    return parts


def _refusal(rel: str, parts: list[str], index: int, dir_fd: int) -> UnsafePath:
    """Why component `index` could not be opened as a directory: a link, or not a directory."""
    shown = "/".join(parts[: index + 1])
    try:
        st = os.lstat(parts[index], dir_fd=dir_fd)
    except OSError:
        return UnsafePath(rel, shown, "changed while it was being checked")
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(parts[index], dir_fd=dir_fd)
        except OSError:
            target = "?"
        return UnsafePath(rel, shown, f"is a symbolic link (to {target})")
    return UnsafePath(rel, shown, "is not a directory")


def walk_dirs(root_fd: int, rel: str, parts: list[str], *, create: bool = False) -> int:
    """Open directory `parts` under `root_fd`, no link followed; `create` makes missing ones.

    Returns a new O_PATH descriptor (the caller closes it). Raises FileNotFoundError when a
    component is missing and `create` is false.
    """
    fd = os.dup(root_fd)
    try:
        for index, name in enumerate(parts):
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile (or a link planted): the open below tells which
                try:
                    child = os.open(name, DIR_FLAGS, dir_fd=fd)
                except (NotADirectoryError, OSError) as exc:
                    if isinstance(exc, FileNotFoundError):
                        raise
                    raise _refusal(rel, parts, index, fd) from None
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                raise _refusal(rel, parts, index, fd) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


class ProjectTree:
    """The project root held open; every method takes a normalised project-relative path."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        # the root itself may be reached through links above it: the user chose that folder
        self.fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ProjectTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- strict: nothing followed ----------------------------------------------------------
    def open_dir(self, rel: str, *, create: bool = False) -> int:
        """An O_PATH descriptor of directory `rel` (made if `create`); no link on the way or at the end."""
        return walk_dirs(self.fd, rel, parts_of(rel), create=create)

    def parent(self, rel: str, *, create: bool = False) -> tuple[int, str]:
        """(descriptor of rel's directory, rel's last component); the last component is not followed."""
        parts = parts_of(rel)
        return walk_dirs(self.fd, rel, parts[:-1], create=create), parts[-1]

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry itself (a link is reported as a link), or None when it or a directory above is missing."""
        try:
            fd, name = self.parent(rel)
        except FileNotFoundError:
            return None
        try:
            return os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return None
        finally:
            os.close(fd)

    def makedirs(self, rel: str) -> None:
        os.close(self.open_dir(rel, create=True))

    def remove(self, rel: str) -> None:
        """Remove the entry `rel` (a file, a link itself, or a whole folder); a missing one is fine."""
        try:
            fd, name = self.parent(rel)
        except FileNotFoundError:
            return
        try:
            remove_entry(fd, name)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        """Move `src` onto `dst` (replacing a file there), making dst's directories."""
        sfd, sname = self.parent(src)
        try:
            dfd, dname = self.parent(dst, create=True)
            try:
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def open_file(self, rel: str, flags: int, mode: int = 0o644) -> int:
        """Open file `rel` with `flags`; never through a link, never a link itself, only a regular file."""
        fd, name = self.parent(rel)
        try:
            return open_regular(name, flags, mode, dir_fd=fd, shown=rel)
        finally:
            os.close(fd)

    # -- beneath: links allowed while they stay inside -------------------------------------
    def stat_beneath(self, rel: str) -> os.stat_result:
        """stat of `rel` following links only while they stay inside the project.

        FileNotFoundError when missing; UnsafePath when a link leads outside.
        """
        fd = self.open_beneath(rel)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def open_beneath(self, rel: str, flags: int = os.O_PATH) -> int:
        parts_of(rel)
        fd = _openat2(self.fd, rel, flags | os.O_CLOEXEC, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
        if fd is not None:
            return fd
        return self._open_beneath_by_walk(rel, flags)

    def _open_beneath_by_walk(self, rel: str, flags: int) -> int:
        """Without openat2: resolve the path's links, check the result is inside, open that strictly."""
        real = os.path.realpath(self.root / rel)
        inside = os.path.relpath(real, os.path.realpath(self.root))
        if inside == "." or inside.startswith("../") or inside == "..":
            raise UnsafePath(rel, rel, f"leads outside the project (to {real})")
        fd, name = self.parent(inside)
        try:
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            os.close(fd)


def open_regular(name: str, flags: int, mode: int = 0o644, *, dir_fd: int | None = None, shown: str = "") -> int:
    """Open `name` without following a link there and refuse anything but a regular file."""
    shown = shown or name
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(shown, shown, "is a symbolic link") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePath(shown, shown, "is not a regular file")
    os.set_blocking(fd, True)  # O_NONBLOCK only kept a FIFO planted there from blocking the open
    return fd


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove `name` in `dir_fd`: a folder with everything in it (links inside removed, never followed)."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        # shutil's descriptor-based rmtree: it opens each folder with O_NOFOLLOW and checks it
        # is the one it listed, so a link swapped in while it works is removed, not followed.
        shutil.rmtree(name, dir_fd=dir_fd)
        return
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


_libc: object = None  # ctypes' libc once loaded; False once openat2 proved unavailable
_how: object = None


def _openat2(dir_fd: int, rel: str, flags: int, resolve: int) -> int | None:
    """openat2(2), or None where the kernel (or a seccomp filter) does not offer it."""
    global _libc, _how
    if _libc is False:
        return None
    if _libc is None:
        import ctypes  # only when first needed: keeps imports of the run package light

        class How(ctypes.Structure):
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

        try:
            _libc, _how = ctypes.CDLL(None, use_errno=True), How
        except OSError:
            _libc = False
            return None
    import ctypes

    how = _how(flags, 0, resolve)  # type: ignore[operator]
    fd = _libc.syscall(_SYS_OPENAT2, dir_fd, os.fsencode(rel), ctypes.byref(how), ctypes.sizeof(how))  # type: ignore[attr-defined]
    if fd >= 0:
        return fd
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM, errno.E2BIG):
        _libc = False  # not offered here (old kernel, seccomp): the walk does the same job
        return None
    if err == errno.EXDEV:
        raise UnsafePath(rel, rel, "leads outside the project through a symbolic link")
    raise OSError(err, os.strerror(err), rel)
