"""Where each key of a TOML document is written: dotted key -> line:column.

tomllib returns plain values without positions, so this light scanner walks the
source text once more and records the offset of every key, table header and array
element (``steps[1].run``, ``steps[0].foreach.sample[3]``). It trusts tomllib to have
validated the document, so it only needs enough of TOML's grammar to find keys; in
a corner it cannot follow it records less, and a message falls back to the nearest
enclosing key it knows.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Sequence

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL = re.compile(r"'[^'\n]*'")
_ML_BASIC = re.compile(r'"""(?:[^"\\]|\\[\s\S]|"(?!""))*"""(?:""?(?!"))?')
_ML_LITERAL = re.compile(r"'''(?:[^']|'(?!''))*'''(?:''?(?!'))?")
_SKIP = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_SKIP_INLINE = re.compile(r"[ \t]*")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?")
_SCALAR = re.compile(r"[^\s,\]\}#]+")
_NEWLINE = re.compile(r"\n")
_STEPS_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*steps[ \t]*\]\]", re.M)


def format_key(path: Sequence[str | int]) -> str:
    """``("steps", 1, "run")`` -> ``steps[1].run``; keys that are not bare are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE_KEY.fullmatch(part) else _quote_key(part)
            out += f".{text}" if out else text
    return out


def _quote_key(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Positions:
    """Key path -> (line, column), both 1-based, for one source text.

    The scan runs on the first question, not before: a valid manifest with no float in
    it never pays for it, which keeps loading a 100,000-value foreach fast.
    """

    def __init__(self, text: str):
        self._text = text
        self._scanned = False
        self._offsets: dict[KeyPath, int] = {}
        self._raw: dict[KeyPath, str] = {}  # numbers, booleans, dates as written
        self._strings: dict[KeyPath, tuple[int, int]] = {}  # a key's string value: where it is written
        self._line_starts: list[int] | None = None

    def _scan(self) -> None:
        self._scanned = True
        try:
            _Scanner(self._text, self).scan()
        except (IndexError, ValueError, AttributeError):  # a corner the scanner does not follow: keep what it has
            pass

    @property
    def offsets(self) -> dict[KeyPath, int]:
        if not self._scanned:
            self._scan()
        return self._offsets

    @property
    def raw_values(self) -> dict[KeyPath, str]:
        if not self._scanned:
            self._scan()
        return self._raw

    @property
    def strings(self) -> dict[KeyPath, tuple[int, int]]:
        if not self._scanned:
            self._scan()
        return self._strings

    def step_lines(self) -> list[int]:
        """The line of each ``[[steps]]`` header, found by a quick search instead of the full scan."""
        lines, line, last = [], 1, 0
        for match in _STEPS_HEADER.finditer(self._text):
            line += self._text.count("\n", last, match.start())
            last = match.start()
            lines.append(line)
        return lines

    def line_col(self, offset: int) -> tuple[int, int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _NEWLINE.finditer(self._text)]
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def find(self, path: Sequence[str | int]) -> tuple[int, int] | None:
        """The position of ``path``, else of its nearest enclosing key that was recorded."""
        path = tuple(path)
        while path:
            offset = self.offsets.get(path)
            if offset is not None:
                return self.line_col(offset)
            path = path[:-1]
        return None

    def inside(self, path: Sequence[str | int], value: str, index: int) -> tuple[int, int] | None:
        """The position of character ``index`` of the string value of ``path``, when the file
        spells it on one line with no escapes (so that characters map one to one)."""
        span = self.strings.get(tuple(path))
        if span is None:
            return None
        token = self._text[span[0] : span[1]]
        if len(token) != len(value) + 2 or token[1:-1] != value:
            return None
        return self.line_col(span[0] + 1 + index)

    def raw(self, path: Sequence[str | int]) -> str | None:
        return self.raw_values.get(tuple(path))


class _Scanner:
    def __init__(self, text: str, out: Positions):
        self.text = text
        self.pos = 0
        self.out = out
        self.arrays: dict[KeyPath, int] = {}  # array-of-tables path -> index of its last table

    def scan(self) -> None:
        text, n = self.text, len(self.text)
        prefix: KeyPath = ()
        while True:
            self.pos = _SKIP.match(text, self.pos).end()
            if self.pos >= n:
                return
            if text[self.pos] == "[":
                prefix = self._header()
            else:
                self._key_value(prefix)

    def _header(self) -> KeyPath:
        start = self.pos
        double = self.text.startswith("[[", start)
        self.pos += 2 if double else 1
        parts, _ = self._key()
        self.pos = self.text.index("]]" if double else "]", self.pos) + (2 if double else 1)
        path: KeyPath = ()
        for i, part in enumerate(parts):
            path += (part,)
            self.out._offsets.setdefault(path, start)
            last = i == len(parts) - 1
            if double and last:
                index = self.arrays.get(path, -1) + 1
                self.arrays[path] = index
                self.out._offsets.setdefault(path, start)
                path += (index,)
            elif path in self.arrays:
                path += (self.arrays[path],)
        self.out._offsets.setdefault(path, start)
        return path

    def _key(self) -> tuple[list[str], int]:
        text = self.text
        parts: list[str] = []
        self.pos = _SKIP_INLINE.match(text, self.pos).end()
        first = self.pos
        while True:
            self.pos = _SKIP_INLINE.match(text, self.pos).end()
            char = text[self.pos]
            if char == '"':
                token = _BASIC.match(text, self.pos).group()
                parts.append(tomllib.loads(f"k = {token}")["k"] if "\\" in token else token[1:-1])
            elif char == "'":
                token = _LITERAL.match(text, self.pos).group()
                parts.append(token[1:-1])
            else:
                token = _BARE_KEY.match(text, self.pos).group()
                parts.append(token)
            self.pos += len(token)
            self.pos = _SKIP_INLINE.match(text, self.pos).end()
            if self.pos < len(text) and text[self.pos] == ".":
                self.pos += 1
                continue
            return parts, first

    def _key_value(self, prefix: KeyPath) -> None:
        parts, start = self._key()
        path = prefix
        for part in parts:
            path += (part,)
            self.out._offsets.setdefault(path, start)
        if self.text[self.pos] != "=":
            raise ValueError("expected '='")
        self.pos += 1
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        text = self.text
        self.pos = _SKIP_INLINE.match(text, self.pos).end()
        char = text[self.pos]
        if char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        elif char == '"':
            pattern = _ML_BASIC if text.startswith('"""', self.pos) else _BASIC
            self._string(path, pattern)
        elif char == "'":
            pattern = _ML_LITERAL if text.startswith("'''", self.pos) else _LITERAL
            self._string(path, pattern)
        else:
            match = _DATETIME.match(text, self.pos) or _SCALAR.match(text, self.pos)
            self.out._raw[path] = match.group()
            self.pos = match.end()

    def _string(self, path: KeyPath, pattern: re.Pattern[str]) -> None:
        start = self.pos
        self.pos = pattern.match(self.text, start).end()
        if isinstance(path[-1], str):  # a key's own string (not array items: keeps big arrays cheap)
            self.out._strings[path] = (start, self.pos)

    def _array(self, path: KeyPath) -> None:
        text = self.text
        self.pos += 1
        index = 0
        while True:
            self.pos = _SKIP.match(text, self.pos).end()
            if text[self.pos] == "]":
                self.pos += 1
                return
            element = path + (index,)
            self.out._offsets.setdefault(element, self.pos)
            self._value(element)
            self.pos = _SKIP.match(text, self.pos).end()
            if text[self.pos] == ",":
                self.pos += 1
            index += 1

    def _inline_table(self, path: KeyPath) -> None:
        text = self.text
        self.pos += 1
        while True:
            self.pos = _SKIP.match(text, self.pos).end()
            if text[self.pos] == "}":
                self.pos += 1
                return
            self._key_value(path)
            self.pos = _SKIP.match(text, self.pos).end()
            if text[self.pos] == ",":
                self.pos += 1
