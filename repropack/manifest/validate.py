"""The problem collector and typed getters every manifest section is validated with.

A :class:`Checker` belongs to one source file (the manifest, or a module it uses). It
records every problem with the dotted key and the key's line:column instead of
stopping at the first, so ``repropack check`` can show them all; getters return a
safe default after recording a problem so validation carries on.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repropack import paths
from repropack.errors import ManifestError
from repropack.manifest.positions import KeyPath, Positions, format_key

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")

_TYPE_NAMES = {
    str: "a string", int: "an integer", float: "a number", bool: "a boolean (true or false)",
    list: "an array", dict: "a table",
}


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """A short rendering of a value for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Collects problems for one file."""

    def __init__(self, path: Path, positions: Positions | None, errors: list[ManifestError] | None = None):
        self.path = path
        self.positions = positions
        self.errors: list[ManifestError] = [] if errors is None else errors

    def error(self, key: KeyPath, message: str, *, hint: str | None = None,
              at: tuple[str, int] | None = None) -> None:
        """Record a problem at ``key``; ``at`` = (the key's string value, index) points inside it."""
        where = None
        if self.positions is not None and key:
            where = (self.positions.inside(key, *at) if at else None) or self.positions.find(key)
        line, column = where if where else (None, None)
        self.errors.append(
            ManifestError(message, path=self.path, key=format_key(key) or None, line=line, column=column, hint=hint)
        )

    def keys(self, table: Mapping[str, Any], allowed: Iterable[str], key: KeyPath, what: str = "") -> None:
        """Refuse keys outside ``allowed``, suggesting the nearest valid one."""
        allowed = tuple(allowed)
        for name in table:
            if name in allowed:
                continue
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(allowed)}"
            self.error(key + (name,), f"unknown key {name!r}{what}", hint=hint)

    def expect(self, value: Any, kind: type | tuple[type, ...], key: KeyPath, what: str | None = None) -> bool:
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
        if not ok:
            wanted = what or " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in _as_tuple(kind))
            self.error(key, f"expected {wanted}, found {type_name(value)} ({shown(value)})")
        return ok

    def table(self, value: Any, key: KeyPath) -> dict[str, Any]:
        return value if self.expect(value, dict, key) else {}

    def string(self, table: Mapping[str, Any], name: str, key: KeyPath, *, required: bool = False) -> str | None:
        if name not in table:
            if required:
                self.error(key, f"missing required key {name!r}")
            return None
        value = table[name]
        return value if self.expect(value, str, key + (name,)) else None

    def integer(self, table: Mapping[str, Any], name: str, key: KeyPath, *, minimum: int = 0) -> int | None:
        if name not in table:
            return None
        value = table[name]
        if not self.expect(value, int, key + (name,)):
            return None
        if value < minimum:
            self.error(key + (name,), f"must be at least {minimum}, found {value}")
            return None
        return value

    def boolean(self, table: Mapping[str, Any], name: str, key: KeyPath) -> bool | None:
        if name not in table:
            return None
        value = table[name]
        return value if self.expect(value, bool, key + (name,)) else None

    def strings(self, table: Mapping[str, Any], name: str, key: KeyPath) -> tuple[str, ...]:
        """An array of strings (a single string is refused: it is almost always a forgotten bracket)."""
        if name not in table:
            return ()
        value = table[name]
        if not self.expect(value, list, key + (name,), "an array of strings"):
            return ()
        out = []
        for i, item in enumerate(value):
            if self.expect(item, str, key + (name, i)):
                out.append(item)
        return tuple(out)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


path_problem = paths.path_problem  # the manifest's name for the shared rules
normalize_path = paths.normalize


def suggest(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
