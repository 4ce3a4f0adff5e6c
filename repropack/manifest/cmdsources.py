"""The project files a step's command names: its sources when ``sources`` is not declared.

A source is in the cache key, so a file missed here is a script whose edits rerun nothing.
The command is read the way a shell reads it, as far as that is knowable without running it:
words are split with shell quoting, ``;``, ``&&``, ``||``, ``|``, ``&``, newlines and
parentheses separate commands, and ``cd DIR`` (or ``pushd DIR``) at a command's start moves
the folder later words are relative to, until the subshell ``( ... )`` it ran in ends.
``bash -c '...'`` is read as a command of its own. After a ``cd`` whose target is not known
(``cd "$X"``, ``cd {params.dir}``, ``cd -``), words are tried against the project folder:
a file named by mistake only costs a rerun, a file missed costs a stale result.
Targets of ``>`` and ``>>`` are written, not read, and are never sources.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from repropack.manifest import placeholders as ph
from repropack.manifest.model import EMPTY, Step
from repropack.manifest.validate import normalize_path

MARKER = "\x00"  # stands for a placeholder: its value is not known here
_OPERATORS = frozenset("();<>|&\n")
_SEPARATORS = ("(", ")", ";", "&", "&&", "|", "||", "|&", ";;", "\n")
_WRITES = (">", ">>", ">|", "&>", "&>>", "<>")
_LONG_OPERATORS = ("&>>", "<<<", "&&", "||", ";;", "|&", ">>", "&>", ">|", "<>", "<<", ">&", "<&")
_KEYWORDS = ("then", "do", "else", "elif", "if", "while", "until", "!", "{", "time", "exec", "command")
_UNSAFE = set("$*?[<>|&;`") | {MARKER}
_SLOT = 0xF0000  # private-use characters stand for the values filled in per instance
_MAX_DEPTH = 4  # bash -c 'bash -c "..."' nesting read at most this deep


class CommandSources:
    """The sources `step.run` names, for each instance: words holding a foreach value or a
    parameter (``python scripts/{tool}.py``) are read once and filled in per instance."""

    def __init__(self, step: Step, root: Path, params: Mapping[str, str] = EMPTY):
        self.root = Path(root)
        self.params = params  # NAME -> text of each parameter
        slots: dict[str, str] = {}
        text = []
        for s in ph.parse(step.run, shell=True):
            if isinstance(s, str):
                text.append(s)
            elif s.name in ph.KNOWN and s.name != "params" or s.fmt is not None:
                text.append(MARKER)  # inputs, outputs, resources, attempt: not known here
            else:
                text.append(slots.setdefault(s.key, chr(_SLOT + len(slots))))
        self.slots = {char: key for key, char in slots.items()}
        words = list(_candidates("".join(text), "", 0))
        self.templates = tuple((word, cwd) for word, cwd in words if _has_slot(word))
        self.shared = self._files((word, cwd) for word, cwd in words if not _has_slot(word))

    def for_instance(self, wildcards: Mapping[str, str]) -> tuple[str, ...]:
        if not self.templates:
            return self.shared
        values = {char: wildcards.get(key, "") if not key.startswith("params.")
                  else self.params.get(key.partition(".")[2], "") for char, key in self.slots.items()}
        table = str.maketrans(values)  # type: ignore[arg-type]
        filled = [(word.translate(table), cwd) for word, cwd in self.templates]
        # A bare value with neither '/' nor '.' (`echo {i}`) is taken for a word, not a file: this
        # runs for every instance, and a stat per instance of a 100,000-row scatter is not free.
        filled = [(word, cwd) for word, cwd in filled if "/" in word or "." in word]
        return tuple(dict.fromkeys(self.shared + self._files(filled))) if filled else self.shared

    def _files(self, words: Iterable[tuple[str, str | None]]) -> tuple[str, ...]:
        return _project_files(self.root, words)


def sources_in(text: str, root: Path) -> tuple[str, ...]:
    """Project-relative paths of the existing files that the shell command `text` names
    (MARKER stands for a value not known here)."""
    return _project_files(Path(root), _candidates(text, "", 0))


def _project_files(root: Path, words: Iterable[tuple[str, str | None]]) -> tuple[str, ...]:
    prefix = f"{root}/"
    found: dict[str, None] = {}
    for word, cwd in words:
        for rel in _resolve(word, cwd):
            if rel not in found and _is_project_file(prefix, root, rel):
                found[rel] = None
    return tuple(found)


def _has_slot(word: str) -> bool:
    return any(ord(c) >= _SLOT for c in word)


def _tokens(text: str) -> list[str] | None:
    """Words and operators; shlex joins adjacent operator characters (``)|``), so they are split again."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        raw = list(lexer)
    except ValueError:  # an unclosed quote: bash would refuse the command too
        return None
    out: list[str] = []
    for token in raw:
        if token and all(c in _OPERATORS for c in token):
            out.extend(_split_operators(token))
        else:
            out.append(token)
    return out


def _split_operators(run: str) -> Iterator[str]:
    i = 0
    while i < len(run):
        op = next((o for o in _LONG_OPERATORS if run.startswith(o, i)), run[i])
        yield op
        i += len(op)


def _candidates(text: str, cwd: str | None, depth: int) -> Iterator[tuple[str, str | None]]:
    """The words of `text` that may name a file, each with the folder it is relative to (None: not known)."""
    tokens = _tokens(text)
    if tokens is None:
        return
    stack: list[str | None] = []
    start, after_write, after_cd, previous = True, False, False, ""
    for token in tokens:
        if token and all(c in _OPERATORS for c in token):
            if token == "(":
                stack.append(cwd)
            elif token == ")" and stack:
                cwd = stack.pop()
            if after_cd:  # a bare `cd` goes to $HOME: a folder not known here
                cwd = None
            after_write = token in _WRITES
            start = token in _SEPARATORS
            after_cd = False
            continue
        if after_cd and token.startswith("-") and token != "-":
            continue  # cd -P DIR
        if after_cd:
            cwd, after_cd = _cd(cwd, token), False
        elif start and token in ("cd", "pushd"):
            after_cd = True
        elif start and token == "popd":
            cwd = None
        elif not after_write:
            if previous == "-c" and depth < _MAX_DEPTH and MARKER not in token:
                yield from _candidates(token, cwd, depth + 1)
            yield token, cwd
        start = start and (token in _KEYWORDS or _is_assignment(token))
        after_write = False
        previous = token


def _is_assignment(word: str) -> bool:
    name, sep, _ = word.partition("=")
    return bool(sep) and name.isidentifier()


def _cd(cwd: str | None, target: str) -> str | None:
    if cwd is None or target == "-" or _UNSAFE & set(target) or _has_slot(target):
        return None
    return _inside(cwd, target)


def _resolve(word: str, cwd: str | None) -> Iterator[str]:
    for candidate in (word, word.partition("=")[2]):
        if candidate and not _UNSAFE & set(candidate):
            rel = _inside(cwd or "", candidate)
            if rel:
                yield normalize_path(rel)


def _inside(folder: str, path: str) -> str | None:
    """`path` taken from the project folder `folder`, relative to the project root; None outside it."""
    if not path or path.startswith(("/", "~")):
        return None
    joined = posixpath.normpath(posixpath.join(folder or ".", path))
    if joined == ".." or joined.startswith("../"):
        return None
    return "" if joined == "." else joined


def _is_project_file(prefix: str, root: Path, rel: str) -> bool:
    """A regular file inside the project, also once every symlink on the way is resolved.
    (String paths: this runs once per instance for a command such as ``bash scripts/{tool}.sh``.)"""
    try:
        if not os.path.isfile(prefix + rel):
            return False
        return Path(os.path.realpath(prefix + rel)).is_relative_to(os.path.realpath(root))
    except (OSError, ValueError, RuntimeError):  # ENAMETOOLONG, an embedded NUL, a symlink loop
        return False
