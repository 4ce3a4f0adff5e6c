"""Project-relative paths: one spelling per file, refused when they would leave their place.

Every input and output path, literal or rendered from foreach values and parameters, goes
through :func:`path_problem` and :func:`normalize` before it is compared with anything:
equal strings then mean the same file, so collisions and protected paths are found on
what the file system will really touch (``out/./x`` is ``out/x``; ``out/.`` is ``out``).
:func:`link_escape` walks a path component by component with ``lstat`` (never a string
prefix test) and names the first symbolic link that leads outside the project.

This module imports nothing of repropack, so the manifest and the runner can both use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

MANIFEST_FILE = "repropack.toml"
# What the tool owns in a project: no step output may be, hold or lie inside one of these.
PROTECTED = (MANIFEST_FILE, "repropack.lock", "locks", ".repropack")
_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")


def path_problem(path: str) -> str | None:
    """Why ``path`` is not an acceptable project-relative path as written, or None."""
    if not path:
        return "is empty"
    if path.startswith("/") or path.startswith("~") or _DRIVE_RE.match(path):
        return "is absolute; paths are relative to the project folder"
    if "\\" in path:
        return "holds a backslash; write paths with '/'"
    if any(c in path for c in "\0\n\r"):
        return "holds a control character"
    if ".." in path.split("/"):
        return "escapes the project folder ('..'); paths stay inside the project"
    return None


def normalize(path: str) -> str:
    """``./data//x.txt`` -> ``data/x.txt``; a trailing '/' is kept (it marks a folder)."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/".join(parts) + ("/" if path.endswith("/") and parts else "")


def is_normal(path: str) -> bool:
    """True when ``path`` is already in :func:`normalize`'s spelling and names something below the root."""
    return bool(path) and all(part not in ("", ".", "..") for part in path.split("/"))


def rendered_problem(path: str) -> str | None:
    """Why a path rendered from values is unsafe once normalised (``out/.`` is the folder ``out``)."""
    problem = path_problem(path)
    if problem:
        return problem
    return protected_problem(normalize(path))


def protected_problem(rel: str) -> str | None:
    """Why a normalised path may not be a step's output (the project itself, or what repropack owns)."""
    rel = rel.rstrip("/")
    if not rel:
        return "is the project folder itself; an output is a file or folder inside it"
    top = rel.split("/", 1)[0]
    if top not in PROTECTED:
        return None
    label = _LABELS[top]
    return f"is {label}" if rel == top else f"lies inside {label}"


_LABELS = {
    MANIFEST_FILE: "the manifest", "repropack.lock": "the lock file repropack.lock",
    "locks": "the lock folder locks/", ".repropack": "repropack's state folder .repropack/",
}


def nested(paths: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Each (inner, outer) where ``outer`` is one of ``paths`` and a folder above ``inner``, another.

    Linear in the total number of path components: every prefix of every path is one set lookup.
    """
    known = set(paths)
    for path in known:
        end = path.find("/")
        while end != -1:
            if path[:end] in known:
                yield path, path[:end]
                break
            end = path.find("/", end + 1)


def link_escape(root: Path, rel: str, cache: dict[str, str | None] | None = None, *,
                last: bool = True) -> str | None:
    """The first component of ``root/rel`` that is a symbolic link leading outside ``root``, or None.

    Each component is ``lstat``-ed; a link is resolved by the kernel (``realpath``) and compared
    with the project's real path component-wise. ``last=False`` leaves the final component
    alone (an output about to be replaced). ``cache`` maps folders already walked to their answer,
    so many paths under one folder cost one walk.
    """
    cache = {} if cache is None else cache
    real_root = os.path.realpath(root)
    parts = [p for p in rel.split("/") if p]
    if not last:
        parts = parts[:-1]
    done = ""
    for part in parts:
        done = f"{done}/{part}" if done else part
        if done in cache:
            if cache[done] is not None:
                return cache[done]
            continue
        cache[done] = None
        if not os.path.islink(os.path.join(root, done)):
            continue
        target = os.path.realpath(os.path.join(root, done))
        if os.path.commonpath([real_root, target]) != real_root:
            cache[done] = done
            return done
    return None
