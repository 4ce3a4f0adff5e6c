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

import posixpath
import shlex
from collections.abc import Iterator
from pathlib import Path

from repropack.manifest import placeholders as ph
from repropack.manifest.model import Step
from repropack.manifest.validate import normalize_path

MARKER = "\x00"  # stands for a placeholder: its value is not known here
_OPERATORS = frozenset("();<>|&\n")
_SEPARATORS = ("(", ")", ";", "&", "&&", "|", "||", "|&", ";;", "\n")
_WRITES = (">", ">>", ">|", "&>", "&>>", "<>")
_LONG_OPERATORS = ("&>>", "<<<", "&&", "||", ";;", "|&", ">>", "&>", ">|", "<>", "<<", ">&", "<&")
_KEYWORDS = ("then", "do", "else", "elif", "if", "while", "until", "!", "{", "time", "exec", "command")
_UNSAFE = set("$*?[<>|&;`") | {MARKER}
_MAX_DEPTH = 4  # bash -c 'bash -c "..."' nesting read at most this deep


def command_sources(step: Step, root: Path) -> tuple[str, ...]:
    """The project files `step.run` names literally (``python scripts/count.py ...``)."""
    segments = ph.parse(step.run, shell=True)
    return sources_in("".join(s if isinstance(s, str) else MARKER for s in segments), root)


def sources_in(text: str, root: Path) -> tuple[str, ...]:
    """Project-relative paths of the existing files that the shell command `text` names."""
    found: dict[str, None] = {}
    base = Path(root)
    try:
        real_root = base.resolve()
    except (OSError, RuntimeError):
        return ()
    for rel in _candidates(text, "", 0):
        if rel not in found and _is_project_file(base, real_root, rel):
            found[rel] = None
    return tuple(found)


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


def _candidates(text: str, cwd: str | None, depth: int) -> Iterator[str]:
    """Paths (relative to the project) that words of `text` may name; `cwd` None: not known."""
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
            yield from _resolve(token, cwd)
        start = start and (token in _KEYWORDS or _is_assignment(token))
        after_write = False
        previous = token


def _is_assignment(word: str) -> bool:
    name, sep, _ = word.partition("=")
    return bool(sep) and name.isidentifier()


def _cd(cwd: str | None, target: str) -> str | None:
    if cwd is None or target == "-" or _UNSAFE & set(target):
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


def _is_project_file(base: Path, real_root: Path, rel: str) -> bool:
    """A regular file inside the project, also once every symlink on the way is resolved."""
    try:
        path = base / rel
        return path.is_file() and path.resolve().is_relative_to(real_root)
    except (OSError, ValueError, RuntimeError):  # ENAMETOOLONG, an embedded NUL, a symlink loop
        return False
