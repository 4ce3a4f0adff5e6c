"""Paths inside the project, reached without following a symbolic link out of it.

Every path the runner removes, creates, renames, mounts, hashes or keeps state in is
resolved from an open descriptor of the project root, and the operation itself
(``unlinkat``, ``mkdirat``, ``renameat``, ``openat``) uses the descriptor that was checked.
A string prefix check would pass ``out/sub/f`` with ``out/sub -> /elsewhere``; resolving a
path and then using its string would race a step that swaps the link in between. Neither
happens with descriptors: whatever a link is flipped to meanwhile, what was checked is what
is used.

Two rules. *Inside* (:class:`ProjectTree`, for project paths: outputs, their folders,
inputs): links are followed only while they stay inside the project, by
``openat2(RESOLVE_BENEATH)`` where the kernel has it (Linux 5.6+), else by resolving the
path and walking the result component by component with ``O_NOFOLLOW | O_DIRECTORY |
O_PATH``; the last component of what is removed, replaced or renamed is never followed.
*Strict* (``ProjectTree(root, strict=True)``, for ``.repropack/``): no link anywhere, every
component opened with ``O_NOFOLLOW``; state files must be regular files.
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
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08


class UnsafePath(RunError):
    """A path the runner would act on leads outside the project, or is not what it must be."""

    def __init__(self, path: str, component: str, why: str):
        self.path = path
        self.component = component
        self.why = why
        where = path if component == path else f"{path}: {component}"
        super().__init__(f"{where} {why}")


OUTSIDE = "leading outside the project; repropack does not follow it"
IN_STATE = "; repropack does not follow links in its state folder .repropack"


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
        return UnsafePath(rel, shown, f"is a symbolic link (to {target}){IN_STATE}")
    return UnsafePath(rel, shown, "is not a directory")


def walk_dirs(root_fd: int, rel: str, parts: list[str], *, create: bool = False) -> int:
    """Open directory `parts` under `root_fd`, no link followed (strict); `create` makes missing ones.

    Returns a new O_PATH descriptor (the caller closes it). Raises FileNotFoundError when a
    component is missing and `create` is false.
    """
    if parts:
        try:  # one system call for the common case: everything there, no link anywhere
            fd = _openat2(root_fd, "/".join(parts), DIR_FLAGS, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS)
        except OSError:
            fd = None  # missing, a link or not a folder: the walk below makes it or says which
        if fd is not None:
            return fd
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


_INSIDE_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_BENEATH = _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS


def inside_dirs(tree: ProjectTree, rel: str, parts: list[str], *, create: bool = False) -> int:
    """Open directory `parts` following links only while they stay inside; `create` makes missing ones."""
    if not parts:
        return os.dup(tree.fd)
    try:
        fd = _openat2(tree.fd, "/".join(parts), _INSIDE_DIR, _BENEATH)
    except FileNotFoundError:
        if not create:
            raise
        fd = _make_inside(tree, rel, parts)
    except OSError as exc:
        raise _why_not(tree, rel, parts, exc) from None
    if fd is not None:
        return fd
    # no openat2: resolve the links, check the result is inside, walk that strictly
    real = os.path.realpath(os.path.join(tree.root, *parts))
    inside = os.path.relpath(real, os.path.realpath(tree.root))
    if inside == ".":
        return os.dup(tree.fd)
    if inside == ".." or inside.startswith("../"):
        raise _escape(tree, rel, parts)
    return walk_dirs(tree.fd, rel, inside.split("/"), create=create)


def _make_inside(tree: ProjectTree, rel: str, parts: list[str]) -> int:
    """Make the missing folders of `parts` one by one, each in a folder opened beneath the root."""
    fd = os.dup(tree.fd)
    try:
        for index in range(len(parts)):
            prefix = "/".join(parts[: index + 1])
            try:
                child = _openat2(tree.fd, prefix, _INSIDE_DIR, _BENEATH)
            except FileNotFoundError:
                try:
                    os.mkdir(parts[index], 0o777, dir_fd=fd)
                except FileExistsError:
                    pass  # made meanwhile, or a dangling link: the open below says which
                try:
                    child = _openat2(tree.fd, prefix, _INSIDE_DIR, _BENEATH)
                except OSError as exc:
                    raise _why_not(tree, rel, parts, exc) from None
            except OSError as exc:
                raise _why_not(tree, rel, parts, exc) from None
            os.close(fd)
            fd = child  # type: ignore[assignment]  # openat2 answered above, so it is there
    except BaseException:
        os.close(fd)
        raise
    return fd


def _why_not(tree: ProjectTree, rel: str, parts: list[str], exc: OSError) -> Exception:
    if exc.errno == errno.EXDEV:
        return _escape(tree, rel, parts)
    if exc.errno == errno.ENOTDIR:
        for index in range(len(parts)):
            shown = "/".join(parts[: index + 1])
            path = os.path.join(tree.root, shown)
            if os.path.lexists(path) and not os.path.isdir(path):
                return UnsafePath(rel, shown, "is not a directory")
    if exc.errno == errno.ELOOP:
        return UnsafePath(rel, rel, "goes through too many symbolic links")
    return exc


def _escape(tree: ProjectTree, rel: str, parts: list[str]) -> UnsafePath:
    """Name the first component that is a link leading outside (for the message; the refusal is made)."""
    real_root = os.path.realpath(tree.root)
    for index in range(len(parts)):
        shown = "/".join(parts[: index + 1])
        path = os.path.join(tree.root, shown)
        try:  # the link may be flipped meanwhile: then the message is the generic one
            if os.path.islink(path) and os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
                return UnsafePath(rel, shown, f"is a symbolic link (to {os.readlink(path)}) {OUTSIDE}")
        except OSError:
            break
    return UnsafePath(rel, rel, f"goes through a symbolic link {OUTSIDE}")


class ProjectTree:
    """The project root held open; every method takes a normalised project-relative path.

    `strict` refuses every link (for .repropack/); otherwise links are followed while they stay inside.
    """

    def __init__(self, root: Path | str, *, strict: bool = False):
        self.root = Path(root)
        self.strict = strict
        # the root itself may be reached through links above it: the user chose that folder
        self.fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def _dirs(self, rel: str, parts: list[str], create: bool) -> int:
        if self.strict:
            return walk_dirs(self.fd, rel, parts, create=create)
        return inside_dirs(self, rel, parts, create=create)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ProjectTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_dir(self, rel: str, *, create: bool = False) -> int:
        """An O_PATH descriptor of directory `rel` (made if `create`)."""
        return self._dirs(rel, parts_of(rel), create)

    def parent(self, rel: str, *, create: bool = False) -> tuple[int, str]:
        """(descriptor of rel's directory, rel's last component); the last component is not followed."""
        parts = parts_of(rel)
        return self._dirs(rel, parts[:-1], create), parts[-1]

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

    def open_file(self, rel: str, flags: int, mode: int = 0o644, *, make_dirs: bool = False) -> int:
        """Open file `rel` with `flags`; never through a link, never a link itself, only a regular file."""
        fd, name = self.parent(rel, create=make_dirs)
        try:
            return open_regular(name, flags, mode, dir_fd=fd, shown=rel)
        finally:
            os.close(fd)

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
        """Open `rel` (links followed while they stay inside, the last one too)."""
        parts = parts_of(rel)
        try:
            fd = _openat2(self.fd, rel, flags | os.O_CLOEXEC, _BENEATH)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.ELOOP):
                raise _why_not(self, rel, parts, exc) from None
            raise
        if fd is not None:
            return fd
        real = os.path.realpath(self.root / rel)
        inside = os.path.relpath(real, os.path.realpath(self.root))
        if inside == "." or inside.startswith("../") or inside == "..":
            raise _escape(self, rel, parts)
        inner = inside.split("/")
        fd, name = walk_dirs(self.fd, inside, inner[:-1]), inner[-1]
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
            try:
                target = f" (to {os.readlink(name, dir_fd=dir_fd)})"
            except OSError:
                target = ""
            raise UnsafePath(shown, shown, f"is a symbolic link{target}{IN_STATE}") from None
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
    raise OSError(err, os.strerror(err), rel)
