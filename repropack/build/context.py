"""What goes into the workflow layer: the files the manifest declares, nothing else.

Declared means: the manifest and the lock files, every step's ``sources``,
the step inputs that exist in the project and are not produced by another
step, and ``[data]`` files already present. Directories are expanded.
``.repropackignore`` (or else ``.dockerignore``) patterns are honoured, and
secrets (``.env``, ``.aws/``, ``.ssh/``, ``*.pem`` and private keys) are never
taken, even when declared: an image is meant to be published.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEFAULT_SIZE_LIMIT = 50 * 1024 * 1024
IGNORE_FILES = (".repropackignore", ".dockerignore")
SECRET_DIRS = frozenset({".aws", ".ssh", ".gnupg", ".docker"})
SECRET_NAMES = ("*.pem", "*.key", ".env", ".env.*", ".netrc", ".pypirc", "id_rsa*", "id_ed25519*", "id_ecdsa*", "*.p12")
ALWAYS_SKIPPED_DIRS = frozenset({".git", ".repropack", "__pycache__", ".venv", ".dev"})
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@dataclass
class Context:
    files: dict[str, Path] = field(default_factory=dict)  # project-relative posix path -> host path
    secrets: list[str] = field(default_factory=list)  # declared but refused
    ignored: list[str] = field(default_factory=list)
    large: list[tuple[str, int]] = field(default_factory=list)  # left out for their size
    missing: list[str] = field(default_factory=list)  # declared, not found
    outside: list[str] = field(default_factory=list)  # symlinks leading out of the project

    def warnings(self, limit: int) -> list[str]:
        lines = [f"{p}: looks like a secret, never copied into an image" for p in self.secrets]
        lines += [
            f"{p}: {size / 1e6:.1f} MB is over the {limit / 1e6:.0f} MB limit for workflow files, left out "
            "(declare it under [data] with a URL, or pass --allow-large)"
            for p, size in self.large
        ]
        lines += [f"{p}: declared in the manifest but not found, left out" for p in self.missing]
        lines += [f"{p}: a symlink leading out of the project, never copied into an image" for p in self.outside]
        return lines


def is_secret(relpath: str) -> bool:
    parts = PurePosixPath(relpath).parts
    if any(part in SECRET_DIRS for part in parts[:-1]) or (parts and parts[-1] in SECRET_DIRS):
        return True
    name = parts[-1] if parts else ""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_NAMES)


class IgnoreRules:
    """Docker-style ignore patterns: ``*``, ``?``, ``**``, ``!`` re-includes, last match wins."""

    def __init__(self, lines: Iterable[str]):
        self.rules: list[tuple[re.Pattern[str], bool]] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = pattern.strip("/").removeprefix("./")
            if pattern:
                self.rules.append((re.compile(_translate(pattern)), negate))

    @classmethod
    def for_project(cls, root: Path) -> IgnoreRules:
        for name in IGNORE_FILES:
            path = root / name
            if path.is_file():
                return cls(path.read_text(encoding="utf-8").splitlines())
        return cls([])

    def ignored(self, relpath: str) -> bool:
        """True when ``relpath`` or one of its parent directories is excluded."""
        parts = PurePosixPath(relpath).parts
        result = False
        for regex, negate in self.rules:
            for depth in range(1, len(parts) + 1):
                if regex.fullmatch("/".join(parts[:depth])):
                    result = not negate
                    break
        return result


def _translate(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def declared_patterns(manifest) -> tuple[list[str], list[str]]:
    """(patterns of files to take, patterns of files steps produce) from the manifest."""
    take: list[str] = []
    produced: list[str] = []
    for step in manifest.steps:
        take += list(step.sources)
        take += [spec.pattern for spec in step.inputs]
        produced += [spec.pattern for spec in step.outputs]
    take += [item.path for item in manifest.data.values()]
    return take, produced


def collect(
    root: Path,
    patterns: Iterable[str],
    produced: Iterable[str] = (),
    *,
    always: Iterable[str] = (),
    allow_large: bool = False,
    size_limit: int = DEFAULT_SIZE_LIMIT,
) -> Context:
    """Resolve declared patterns to project files under the rules above."""
    root = root.resolve()
    rules = IgnoreRules.for_project(root)
    produced_globs = [_as_glob(p) for p in produced]
    ctx = Context()
    for pattern in list(always) + list(patterns):
        glob = _as_glob(pattern)
        matches = sorted(root.glob(glob)) if glob and _is_relative(glob) else []
        if not matches:
            if glob and not any(ch in pattern for ch in "{*?[") and not _matches_any(glob, produced_globs):
                ctx.missing.append(pattern)
            continue
        for path in matches:
            _add(ctx, root, path, rules, produced_globs, allow_large, size_limit)
    ctx.files = dict(sorted(ctx.files.items()))
    return ctx


def _add(ctx: Context, root: Path, path: Path, rules, produced_globs, allow_large: bool, limit: int) -> None:
    if path.is_dir() and not path.is_symlink():
        for directory, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in ALWAYS_SKIPPED_DIRS)
            for name in sorted(filenames):
                _add(ctx, root, Path(directory) / name, rules, produced_globs, allow_large, limit)
        return
    rel = path.relative_to(root).as_posix()
    if rel in ctx.files or any(part in ALWAYS_SKIPPED_DIRS for part in PurePosixPath(rel).parts):
        return
    if is_secret(rel):
        ctx.secrets.append(rel)
    elif rules.ignored(rel):
        ctx.ignored.append(rel)
    elif _matches_any(rel, produced_globs):
        return
    elif path.is_symlink() and not (root / rel).resolve().is_relative_to(root):
        ctx.outside.append(rel)  # a link out of the project could expose anything
    elif not allow_large and path.is_file() and path.stat().st_size > limit:
        ctx.large.append((rel, path.stat().st_size))
    else:
        ctx.files[rel] = path


def _as_glob(pattern: str) -> str:
    """``data/{sample}.txt`` -> ``data/*.txt``: any placeholder stands for any name."""
    return _PLACEHOLDER.sub("*", pattern).strip().removeprefix("./")


def _is_relative(glob: str) -> bool:
    return not glob.startswith("/") and ".." not in PurePosixPath(glob).parts


def _matches_any(rel: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(rel, g) or rel.startswith(g.rstrip("/") + "/") for g in globs)
