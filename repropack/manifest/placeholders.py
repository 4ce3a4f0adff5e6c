"""Placeholders in commands and paths: ``{inputs}``, ``{params.x}``, ``{sample}``, ``{inputs:list}``...

A template is parsed once into literal text and :class:`Placeholder` segments, then
rendered many times (once per step instance) from already-quoted values. Every value
that reaches a shell goes through :func:`quote` here, so a value holding spaces,
quotes, ``$(...)`` or newlines arrives as one inert word. ``{{`` and ``}}`` are literal
braces; in commands, ``${NAME}`` is left to the shell.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# What may stand alone, and which families take an attribute after a dot.
KNOWN = ("inputs", "outputs", "params", "resources", "attempt")
RESOURCE_ATTRS = ("cpus",)
_BODY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*)(?::([A-Za-z]+))?$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PlaceholderError(ValueError):
    """A malformed template; ``offset`` is where in the text it went wrong (0-based)."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str  # "inputs", "outputs", "params", "resources", "attempt", or a foreach key
    attr: str | None  # "reads" in {inputs.reads}, "min_q" in {params.min_q}
    fmt: str | None  # "list" in {inputs:list}
    offset: int  # where the "{" is in the template

    @property
    def key(self) -> str:
        """The canonical spelling, used as the lookup key when rendering."""
        text = self.name if self.attr is None else f"{self.name}.{self.attr}"
        return text if self.fmt is None else f"{text}:{self.fmt}"

    @property
    def text(self) -> str:
        return "{" + self.key + "}"


Segment = str | Placeholder


def parse(template: str, *, shell: bool = False) -> tuple[Segment, ...]:
    """Split ``template`` into literal strings and placeholders.

    ``shell=True`` (commands) also leaves ``${...}`` to the shell and refuses a placeholder
    inside shell quotes: the tool quotes every value itself, so ``'{inputs}'`` would pass
    literal quote characters or break on a path holding a quote.
    """
    segments: list[Segment] = []
    literal: list[str] = []
    quote_state = _QuoteState() if shell else None
    i, n = 0, len(template)
    while i < n:
        char = template[i]
        if char == "{":
            if template.startswith("{{", i):
                literal.append("{")
                _feed(quote_state, "{")
                i += 2
                continue
            placeholder, end = _braced(template, i, quote_state)
            if literal:
                segments.append("".join(literal))
                literal = []
            segments.append(placeholder)
            i = end + 1
        elif char == "}":
            if not template.startswith("}}", i):
                raise PlaceholderError("unmatched '}' (write '}}' for a literal brace)", i)
            literal.append("}")
            _feed(quote_state, "}")
            i += 2
        elif shell and char == "$" and template.startswith("{", i + 1) and not template.startswith("{{", i + 1):
            end = template.find("}", i + 2)
            if end < 0:
                raise PlaceholderError("unclosed '${'", i)
            literal.append(template[i : end + 1])
            i = end + 1
        else:
            literal.append(char)
            _feed(quote_state, char)
            i += 1
    if literal:
        segments.append("".join(literal))
    return tuple(segments)


def _braced(template: str, i: int, quote_state: _QuoteState | None) -> tuple[Placeholder, int]:
    end = template.find("}", i + 1)
    if end < 0:
        raise PlaceholderError("unclosed '{' (write '{{' for a literal brace)", i)
    placeholder = _placeholder(template[i + 1 : end], i)
    if quote_state is not None and quote_state.quote:
        raise PlaceholderError(
            f"placeholder {placeholder.text} is inside {_QUOTE_NAMES[quote_state.quote]} quotes; "
            "remove the quotes: repropack quotes every value itself",
            i,
        )
    return placeholder, end


def _placeholder(body: str, offset: int) -> Placeholder:
    match = _BODY_RE.match(body.strip())
    if not match or body != body.strip():
        raise PlaceholderError(
            f"'{{{body}}}' is not a placeholder (placeholders look like {{inputs}}, {{params.NAME}} or a foreach key; "
            "write '{{' and '}}' for literal braces)",
            offset,
        )
    name, dotted, fmt = match.groups()
    attr = dotted[1:] if dotted else None
    if fmt is not None and (name, attr, fmt) != ("inputs", None, "list"):
        raise PlaceholderError(f"'{{{body}}}': only {{inputs:list}} takes a format", offset)
    if attr is not None and name not in ("inputs", "outputs", "params", "resources"):
        raise PlaceholderError(f"'{{{body}}}': {{{name}}} takes no '.{attr}'", offset)
    if name == "resources" and attr not in RESOURCE_ATTRS:
        raise PlaceholderError(f"'{{{body}}}': only {{resources.cpus}} is available", offset)
    if name in ("params", "resources") and attr is None:
        raise PlaceholderError(f"'{{{body}}}' needs a name: {{{name}.NAME}}", offset)
    return Placeholder(name, attr, fmt, offset)


_QUOTE_NAMES = {"'": "single", '"': "double"}


class _QuoteState:
    """Tracks POSIX shell quoting across literal text, enough to see if a placeholder is quoted."""

    __slots__ = ("quote", "escaped")

    def __init__(self) -> None:
        self.quote: str | None = None
        self.escaped = False


def _feed(state: _QuoteState | None, char: str) -> None:
    if state is None:
        return
    if state.escaped:
        state.escaped = False
    elif char == "\\" and state.quote != "'":
        state.escaped = True
    elif state.quote is None and char in "'\"":
        state.quote = char
    elif char == state.quote:
        state.quote = None


def placeholders(segments: Iterable[Segment]) -> list[Placeholder]:
    return [s for s in segments if not isinstance(s, str)]


def render(segments: Sequence[Segment], values: Mapping[str, str]) -> str:
    """Join ``segments``, replacing each placeholder by ``values[placeholder.key]`` (already quoted)."""
    return "".join(s if type(s) is str else values[s.key] for s in segments)


def unparse(segments: Iterable[Segment]) -> str:
    """The template text again (literal braces re-escaped), e.g. after placeholders were rewritten."""
    out = []
    for s in segments:
        if isinstance(s, str):
            out.append(s.replace("{", "{{").replace("}", "}}"))
        else:
            out.append(s.text)
    return "".join(out)


def literal_text(segments: Sequence[Segment]) -> str | None:
    """The text of a template with no placeholder, else None."""
    if all(isinstance(s, str) for s in segments):
        return "".join(segments)  # type: ignore[arg-type]
    return None


def value_text(value: object) -> str:
    """A scalar as it reads in a command: numbers as written (1, not 1.0), booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def quote(text: str) -> str:
    return shlex.quote(text)


def quote_path(path: str) -> str:
    """A project-relative path as one shell word; a leading '-' is made ./-x so no tool reads it as an option."""
    return shlex.quote("./" + path if path.startswith("-") else path)


def quote_paths(paths: Iterable[str]) -> str:
    return " ".join(quote_path(p) for p in paths)
