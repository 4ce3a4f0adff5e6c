"""Compiled path patterns and parameter values, for expanding steps into instances fast.

A pattern such as ``results/{sample}.{params.ext}`` is compiled once per expansion:
parameters are filled in (they are the same for every instance) and what remains is
a list of literal pieces and foreach-column indexes, so rendering one instance's path
is a single join. This keeps a 100,000-instance expansion linear and cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repropack.errors import UsageError
from repropack.manifest import placeholders as ph
from repropack.manifest.model import Manifest, Step
from repropack.manifest.validate import normalize_path, path_problem, suggest

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class Pattern:
    """One path pattern with its parameters filled in."""

    __slots__ = ("text", "pieces", "keys", "simple", "normalize", "params", "source", "_fmt")

    def __init__(self, pattern: str, texts: Mapping[str, str]):
        pieces: list[Any] = []
        keys: list[str] = []
        params: dict[str, str] = {}
        self.normalize = False  # only parameter values can bring '//' or './' into a path
        for segment in ph.parse(pattern):
            if isinstance(segment, str):
                pieces.append(segment)
            elif segment.name == "params":
                params[segment.attr or ""] = texts[segment.attr or ""]
                pieces.append(params[segment.attr or ""])
                self.normalize = True
            else:
                pieces.append(ph.Placeholder(segment.name, None, None, 0))  # type: ignore[arg-type]
                keys.append(segment.name)
        self.keys = tuple(keys)
        self.params = params  # name -> text, for messages
        self.source = pattern
        # Literal text with placeholders spelled canonically: equal texts mean "the same files"
        # (normalised, so "./out/{s}" from a parameter gathers what "out/{s}" writes).
        text = "".join(p if isinstance(p, str) else "{" + p.name + "}" for p in pieces)
        self.text = normalize_path(text) if self.normalize and not path_problem(text) else text
        self.pieces = tuple(pieces)
        self.simple = not keys

    def problem(self) -> str | None:
        """Why this pattern is not a safe project path once parameters are filled in."""
        probe = "".join(p if isinstance(p, str) else "x" for p in self.pieces)
        return path_problem(probe) or (None if normalize_path(probe) else "is the project folder itself")

    def shown(self) -> str:
        """The pattern for a message, with the parameter values that made it."""
        if not self.params:
            return repr(self.text)
        given = ", ".join(f"params.{n}={v!r}" for n, v in self.params.items())
        return f"{self.source!r} with {given}"

    def render(self, values: Mapping[str, str]) -> str:
        # str.format_map does the join in C: literal braces were doubled in `text`'s format twin.
        text = self.text if self.simple else self._format().format_map(values)
        return normalize_path(text) if self.normalize else text

    def _format(self) -> str:
        try:
            return self._fmt  # type: ignore[has-type]
        except AttributeError:
            self._fmt = "".join(p.replace("{", "{{").replace("}", "}}") if isinstance(p, str) else "{" + p.name + "}"
                                for p in self.pieces)
            return self._fmt

    def bind(self, values: Mapping[str, str]) -> "Pattern":
        """The pattern with some keys filled in (the others stay placeholders)."""
        clone = Pattern.__new__(Pattern)
        clone.pieces = tuple(values[p.name] if not isinstance(p, str) and p.name in values else p for p in self.pieces)
        clone.keys = tuple(k for k in self.keys if k not in values)
        clone.text = "".join(p if isinstance(p, str) else "{" + p.name + "}" for p in clone.pieces)
        clone.simple = not clone.keys
        clone.normalize = self.normalize
        clone.params = self.params
        clone.source = self.source
        return clone


def apply_overrides(manifest: Manifest, given: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``--param KEY=VALUE`` applied over the defaults, each typed like its default."""
    values = dict(manifest.params)
    texts = dict(manifest.param_texts)
    for key, raw in given.items():
        if key not in values:
            hint = suggest(key, values) or (f"parameters: {', '.join(values)}" if values else "the manifest has no [params]")
            raise UsageError(f"--param {key}: no parameter {key!r} in [params]", hint=hint)
        values[key], texts[key] = _typed(key, raw, values[key])
    return values, texts


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _typed(key: str, raw: str, default: Any) -> tuple[Any, str]:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            value = lowered in _TRUE
            return value, ph.value_text(value)
        raise UsageError(f"--param {key}={raw}: expected true or false (the default is {ph.value_text(default)})")
    if isinstance(default, int):
        text = raw.strip()
        if not _INTEGER.fullmatch(text):  # int() would also take "1_000" and non-ASCII digits
            raise UsageError(f"--param {key}={raw}: expected an integer (the default is {default})")
        return int(text), text  # as typed: `--param n=01` renders 01, like a float's 0.50
    if isinstance(default, float):
        try:
            value = float(raw.strip())
        except ValueError:
            raise UsageError(f"--param {key}={raw}: expected a number (the default is {default})") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise UsageError(f"--param {key}={raw}: expected a finite number")
        return value, raw.strip()
    return raw, raw


def used_params(step: Step) -> tuple[str, ...]:
    """The parameters a step's command and paths name, in first-use order."""
    names: dict[str, None] = {}
    templates: list[tuple[str, bool]] = [(step.run, True)]
    templates += [(f.pattern, False) for f in step.inputs + step.outputs]
    templates += [(s, False) for s in step.sources]
    for template, shell in templates:
        for p in ph.placeholders(ph.parse(template, shell=shell)):
            if p.name == "params" and p.attr:
                names[p.attr] = None
    return tuple(names)


def instance_id(step: str, keys: Sequence[str], row: Sequence[str], order: Sequence[int]) -> str:
    """``count[sample=a]``: the step and its foreach values, keys sorted."""
    if not keys:
        return step
    return step + "[" + ",".join(f"{keys[i]}={row[i]}" for i in order) + "]"
