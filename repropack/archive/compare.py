"""The rerun's verdict, output by output: identical, different (with a short diff of text), missing,
or what a ``[compare]`` rule of the manifest said instead (and which rule it was)."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

DIFF_LINES = 12
TEXT_LIMIT = 4 << 20  # larger files get no diff (and an ignore-lines rule reads at most this much)


@dataclass(frozen=True)
class Outcome:
    path: str
    verdict: str  # identical | different | missing | ignored | exists
    expected: str
    actual: str | None = None
    rule: str | None = None  # the [compare] entry that applied, as "PATTERN = RULE"
    diff: str | None = None

    def as_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def rule_for(path: str, rules) -> object | None:
    """The last matching ``[compare]`` rule (later entries refine earlier ones), or None."""
    found = None
    for rule in rules:
        if fnmatch.fnmatchcase(path, rule.pattern):
            found = rule
    return found


def compare(root: Path, expected: dict[str, str], rules=(), published: Path | None = None,
            kept: dict[str, str] | None = None) -> list[Outcome]:
    """Hash every published output again under ``root`` (descriptor-safe) and judge it.

    ``kept``: for outputs under an ignore-lines rule, the sha256 of the published text without the
    ignored lines (``pack`` records it, so the rule works without the outputs bundled).
    """
    from repropack.run.verify import verify

    report = verify(root, expected)
    actual = {entry["path"]: entry["actual"] for entry in report["changed"]}
    actual.update({path: expected[path] for path in report["ok"]})
    missing = set(report["missing"])
    return [_judge(root, path, expected[path], actual.get(path), path in missing, rule_for(path, rules), published,
                   (kept or {}).get(path)) for path in sorted(expected)]


def _judge(root: Path, path: str, want: str, got: str | None, missing: bool, rule, published,
           kept: str | None) -> Outcome:
    label = _label(rule)
    if rule is not None and rule.rule == "ignore":
        return Outcome(path, "ignored", want, got, label)
    if missing:
        return Outcome(path, "missing", want, None, label)
    if rule is not None and rule.rule == "exists":
        return Outcome(path, "exists", want, got, label)
    if got == want:
        return Outcome(path, "identical", want, got, label)
    old = (published / path) if published is not None and (published / path).is_file() else None
    if rule is not None and rule.rule == "ignore-lines":
        pattern = re.compile(rule.ignore_lines)
        reference = _kept(old, pattern) if old is not None else kept
        if reference is not None and reference == kept_digest(root / path, rule.ignore_lines):
            return Outcome(path, "identical", want, got, label)
    return Outcome(path, "different", want, got, label, _diff(old, root / path, path))


def _label(rule) -> str | None:
    if rule is None:
        return None
    value = f"{{ ignore-lines = {rule.ignore_lines!r} }}" if rule.rule == "ignore-lines" else repr(rule.rule)
    return f"{rule.pattern!r} = {value}"


def _text(path: Path) -> list[str] | None:
    try:
        if path.stat().st_size > TEXT_LIMIT:
            return None
        data = path.read_bytes()
        if b"\0" in data:
            return None
        return data.decode("utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        return None


def kept_digest(path: Path, regex: str) -> str | None:
    """sha256 of a text file without the lines ``regex`` matches (None for binary or large files)."""
    return _kept(path, re.compile(regex))


def _kept(path: Path, pattern: re.Pattern) -> str | None:
    lines = _text(path)
    if lines is None:
        return None
    return hashlib.sha256("".join(line for line in lines if not pattern.search(line)).encode()).hexdigest()


def _diff(old: Path | None, new: Path, name: str) -> str | None:
    if old is None:
        return None
    before, after = _text(old), _text(new)
    if before is None or after is None:
        return None
    lines = list(difflib.unified_diff(before, after, f"published/{name}", f"rerun/{name}", n=1))
    shown = lines[:DIFF_LINES]
    if len(lines) > DIFF_LINES:
        shown.append(f"... ({len(lines) - DIFF_LINES} more diff lines)\n")
    return "".join(line if line.endswith("\n") else line + "\n" for line in shown)
