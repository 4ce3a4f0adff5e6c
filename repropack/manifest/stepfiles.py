"""Checks of a step's path patterns: which placeholders they may hold, that every scatter
key reaches every output, and that values used in paths keep files in their place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repropack.manifest import placeholders as ph
from repropack.manifest.model import FileSpec, Foreach
from repropack.manifest.positions import KeyPath
from repropack.manifest.validate import Checker, path_problem, suggest

if TYPE_CHECKING:
    from repropack.manifest.steps import Scope


def check_file_placeholders(check: Checker, key: KeyPath, foreach: Foreach, inputs, outputs, sources, scope: Scope) -> None:
    gathered: set[str] = set()
    for i, spec in enumerate(inputs):
        here = spec_key(key, "inputs", i, spec)
        for p in _pattern_placeholders(spec.pattern):
            if p.name == "params":
                _param_in_path(check, here, p, scope)
            elif p.attr is not None or p.name in ph.KNOWN:
                check.error(here, f"{spec.pattern!r}: {p.text} cannot appear in a path")
            elif p.name not in foreach.keys:
                gathered.add(p.name)
    for i, spec in enumerate(outputs):
        here = spec_key(key, "outputs", i, spec)
        names = set()
        for p in _pattern_placeholders(spec.pattern):
            names.add(p.name)
            if p.name == "params":
                _param_in_path(check, here, p, scope)
            elif p.attr is not None or p.name in ph.KNOWN:
                check.error(here, f"{spec.pattern!r}: {p.text} cannot appear in a path")
            elif p.name in gathered:
                check.error(here, f"{spec.pattern!r}: {p.text} is gathered by this step's inputs, "
                            "so it has many values here; a gathered key may not appear in outputs")
            elif p.name not in foreach.keys:
                check.error(here, f"{spec.pattern!r}: placeholder {p.text} has no value "
                            "(not a foreach key of this step)", hint=suggest(p.name, foreach.keys))
        missing = [k for k in foreach.keys if k not in names]
        if missing:
            check.error(here, f"{spec.pattern!r} must contain {', '.join('{' + k + '}' for k in missing)}: "
                        "each instance of a scattered step writes its own files")
    for i, pattern in enumerate(sources):
        for p in _pattern_placeholders(pattern):
            if p.name == "params":
                _param_in_path(check, key + ("sources", i), p, scope)
            elif p.name not in foreach.keys or p.attr is not None:
                check.error(key + ("sources", i), f"{pattern!r}: {p.text} has no value in a source path")


def spec_key(key: KeyPath, kind: str, index: int, spec: FileSpec) -> KeyPath:
    """The key of a declared input or output, for messages."""
    return key + (kind, spec.name) if spec.name is not None else key + (kind, index)


def _param_in_path(check: Checker, key: KeyPath, p: ph.Placeholder, scope: Scope) -> None:
    if p.attr not in scope.params:
        check.error(key, f"placeholder {p.text} has no value: no such parameter in [params]")
        return
    problem = path_problem(ph.value_text(scope.params[p.attr]))
    if problem:
        check.error(("params", p.attr or ""), f"the value {scope.params[p.attr]!r} is used in a path and {problem}")


def _pattern_placeholders(pattern: str) -> list[ph.Placeholder]:
    try:
        return ph.placeholders(ph.parse(pattern))
    except ph.PlaceholderError:
        return []  # already reported


def check_foreach_values(check: Checker, key: KeyPath, foreach: Foreach, files, sources) -> None:
    """A value used in a path may not hold '/' or '..': it would move a file out of its place."""
    if not foreach:
        return
    used = {p.name for f in files for p in _pattern_placeholders(f.pattern)}
    used |= {p.name for s in sources for p in _pattern_placeholders(s)}
    for column, name in enumerate(foreach.keys):
        if name not in used:
            continue
        for row_index, row in enumerate(foreach.rows):
            value = row[column]
            why = value_problem(value)
            if why:
                check.error(key + ("foreach",) + _value_key(foreach, row_index, column),
                            f"value {value!r} of {name!r} {why}, and {{{name}}} is used in a path")
                break


def value_problem(value: str) -> str | None:
    """Why a foreach value cannot stand for one path segment: it would move a file out of its place
    (``out/{s}`` with ``.`` is the folder ``out`` itself, with ``a/b`` a file in another folder)."""
    if not value:
        return "is empty"
    if value == ".":
        return "is '.', which names the folder around it, not a file in it"
    if "/" in value or ".." in value or any(c in value for c in "\0\n\r"):
        return "holds '/' or '..' or a control character"
    return None


def _value_key(foreach: Foreach, row_index: int, column: int) -> KeyPath:
    """Where a value of a product-form foreach is written: its index in its own key's array."""
    value = foreach.rows[row_index][column]
    if foreach.explicit:
        return (row_index, foreach.keys[column])
    return (foreach.keys[column], foreach.values(foreach.keys[column]).index(value))
