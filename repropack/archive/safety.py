"""Which tar members may be extracted, decided before a byte of them is written.

Python's ``tarfile`` data filter (PEP 706) is the floor, not the rule: it lets hard links inside
the target through, and checks each member alone, so a link planted by one member and written
through by a later one is the caller's problem (CVE-2007-4559 and the filter bypasses of
2024-2025). Here the rules are stricter and stateful:

- names: relative, no ``..``, no empty or ``.`` component, no NUL or backslash, no reserved name
  in a sub-folder, at most one member per name, no member beneath a file or a link member;
- types: regular files and relative symbolic links only (no hard links, devices, FIFOs,
  directories, sparse or vendor types); a link's target must stay inside the archive;
- modes: no setuid, setgid or sticky bit (the format writes 0644/0755 only);
- caps: total content size, member count, and compression ratio (checked while decompressing).
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
from dataclasses import dataclass, field

from repropack.errors import ArchiveError

GiB = 1 << 30
DEFAULT_MAX_BYTES = 256 * GiB
DEFAULT_MAX_MEMBERS = 1_000_000
DEFAULT_MAX_RATIO = 500  # zstd reaches ~5-20x on text, ~3x on images; a bomb is thousands
RATIO_GRACE = 32 << 20  # the ratio is judged only once this much was decompressed

_TYPE_NAMES = {
    tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO", tarfile.DIRTYPE: "a directory entry", tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: float = DEFAULT_MAX_RATIO


def name_problem(name: str) -> str | None:
    """Why ``name`` may not be a member's path, or None."""
    if not name:
        return "has an empty name"
    if "\0" in name or "\\" in name:
        return "has a NUL or backslash in its name"
    if name.startswith("/"):
        return "has an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "has '..' in its path"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' path component"
    return None


def link_target_problem(name: str, target: str) -> str | None:
    if not target or target.startswith("/") or "\0" in target:
        return f"is a link to {target!r}, which is absolute or empty"
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        return f"is a link to {target!r}, which leads outside the archive"
    return None


@dataclass
class MemberRules:
    """The stateful checks across members: duplicates, members beneath files and links, caps."""

    limits: Limits = field(default_factory=Limits)
    seen: dict[str, str] = field(default_factory=dict)  # name -> "file" | "link"
    parents: set[str] = field(default_factory=set)  # every folder some member lives in
    links: dict[str, str] = field(default_factory=dict)  # link member -> its target
    total: int = 0

    def check(self, info: tarfile.TarInfo) -> None:
        """Raise :class:`ArchiveError` naming the member unless it may be extracted."""
        name = info.name
        problem = name_problem(name) or self._type_problem(info) or self._mode_problem(info)
        if problem is None and info.issym():
            problem = link_target_problem(name, info.linkname)
        if problem is None:
            problem = self._placement_problem(name)
        if problem is not None:
            raise ArchiveError(f"member {problem}; nothing was extracted", member=_printable(name))
        self.seen[name] = "link" if info.issym() else "file"
        if info.issym():
            self.links[name] = info.linkname
        self.parents.update(_ancestors(name))
        if len(self.seen) > self.limits.max_members:
            raise ArchiveError(f"more than {self.limits.max_members} members (the member cap); nothing was extracted")
        self.total += info.size
        if self.total > self.limits.max_bytes:
            raise ArchiveError(f"more than {self.limits.max_bytes} bytes of content (the size cap); "
                               "nothing was extracted", member=_printable(name))

    @staticmethod
    def _type_problem(info: tarfile.TarInfo) -> str | None:
        if info.isreg() and info.type != tarfile.CONTTYPE or info.issym():
            return None
        return f"is {_TYPE_NAMES.get(info.type, f'of tar type {info.type!r}')}, which an archive may not hold"

    @staticmethod
    def _mode_problem(info: tarfile.TarInfo) -> str | None:
        if info.mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
            return f"has the setuid, setgid or sticky bit (mode {info.mode:o})"
        return None

    def _placement_problem(self, name: str) -> str | None:
        if name in self.seen or name in self.parents:
            return "appears twice (or is both a file and a folder)"
        for ancestor in _ancestors(name):
            kind = self.seen.get(ancestor)
            if kind == "link":
                return f"would be written through the link {_printable(ancestor)}"
            if kind == "file":
                return f"would be written beneath the file {_printable(ancestor)}"
        return None


def chained_link_problem(links: dict[str, str]) -> tuple[str, str] | None:
    """A link whose target passes through another link member, or which is one: (name, why), or None.

    Each target alone stays inside lexically, but ``a/b/c/m -> ../../../x`` plus
    ``k -> a/b/c/m/../../..`` resolves ``k`` above the target on disk; so no target may go
    through a link at all (the walk is done once every member is known).
    """
    for name, target in sorted(links.items()):
        stack = name.split("/")[:-1]
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not stack:
                    return name, f"is a link to {target!r}, which leads outside the archive"
                stack.pop()
                continue
            stack.append(part)
            if "/".join(stack) in links:
                return name, f"is a link to {target!r}, which goes through the link {'/'.join(stack)}"
    return None


def _ancestors(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
