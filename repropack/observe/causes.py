"""Why a step failed, in plain words: a failed attempt matched against a table of log signatures.

The table is data (``causes.toml`` beside this module; its header explains the order of matching);
a manifest adds its own ``[[causes]]`` patterns, tried first. Everything that shows a failure (the
run's failure summary, ``report``, ``status``, alerts) asks :func:`diagnose` with what the records
hold: the failure class, the exit status or signal, and the tail of the attempt's stderr and stdout.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("causes.toml")
TABLE_FORMAT = 1
TAIL_LINES = 60  # per stream: a signature is near the end (a traceback's last line, the shell's message)
TAIL_BYTES = 64 << 10
EVIDENCE_CHARS = 200


@dataclass(frozen=True)
class Cause:
    id: str
    cause: str  # a few words: "disk full"
    fix: str
    evidence: str  # what matched: a log line, "exit status 127", "failure class oom"

    def to_record(self) -> dict[str, str]:
        return {"id": self.id, "cause": self.cause, "fix": self.fix, "evidence": self.evidence}

    def line(self) -> str:
        return f"{self.cause} ({self.evidence})"


@dataclass(frozen=True)
class Signature:
    id: str
    cause: str
    fix: str
    patterns: tuple[re.Pattern[str], ...] = ()
    classes: frozenset[str] = frozenset()
    exit: frozenset[int] = frozenset()
    signals: frozenset[int] = frozenset()
    fallback_classes: frozenset[str] = frozenset()

    def search(self, lines: Sequence[str]) -> str | None:
        """The last line that one of the patterns finds, or None."""
        for text in reversed(lines):
            if any(p.search(text) for p in self.patterns):
                return text
        return None


@dataclass(frozen=True)
class CauseTable:
    signatures: tuple[Signature, ...]
    user: tuple[Signature, ...] = field(default=())

    def with_user(self, patterns: Iterable[Any]) -> CauseTable:
        """The table with a manifest's ``[[causes]]`` (objects with pattern, cause, fix) tried first."""
        user = tuple(Signature(id=f"manifest-{i}", cause=p.cause, fix=p.fix or "", patterns=(re.compile(p.pattern),))
                     for i, p in enumerate(patterns))
        return CauseTable(self.signatures, user)

    def match(self, *, failure: str | None, exit_status: int | None = None, signal: int | None = None,
              log: str = "") -> Cause | None:
        lines = [line.rstrip("\r") for line in log.splitlines() if line.strip()]
        for sig in self.user:
            hit = sig.search(lines)
            if hit is not None:
                return _cause(sig, f"log: {_short(hit)}")
        if failure:
            for sig in self.signatures:
                if failure in sig.classes:
                    return _cause(sig, f"failure class {failure}")
        for sig in self.signatures:
            hit = sig.search(lines)
            if hit is not None:
                return _cause(sig, f"log: {_short(hit)}")
        if signal is None and exit_status is not None and 128 < exit_status < 160:
            signal = exit_status - 128  # a shell reports a step ended by signal N as 128+N
        for sig in self.signatures:
            if exit_status is not None and exit_status in sig.exit:
                return _cause(sig, f"exit status {exit_status}")
            if signal is not None and signal in sig.signals:
                return _cause(sig, f"signal {signal}")
        if failure:
            for sig in self.signatures:
                if failure in sig.fallback_classes:
                    return _cause(sig, f"failure class {failure}")
        return None


def _cause(sig: Signature, evidence: str) -> Cause:
    return Cause(sig.id, sig.cause, sig.fix, evidence)


def _short(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= EVIDENCE_CHARS else line[: EVIDENCE_CHARS - 1] + "…"


@functools.cache
def builtin() -> CauseTable:
    """The shipped table (``causes.toml``), parsed once."""
    return parse_table(tomllib.loads(TABLE.read_text(encoding="utf-8")), TABLE)


def parse_table(data: Mapping[str, Any], where: Path | str) -> CauseTable:
    """A cause table from its TOML; a malformed entry is a bug in the shipped file: it raises."""
    if data.get("format") != TABLE_FORMAT:
        raise ValueError(f"{where}: format {data.get('format')!r}, this repropack reads {TABLE_FORMAT}")
    out = []
    for i, entry in enumerate(data.get("cause", [])):
        try:
            out.append(Signature(
                id=entry["id"], cause=entry["cause"], fix=entry["fix"],
                patterns=tuple(re.compile(p) for p in entry.get("patterns", [])),
                classes=frozenset(entry.get("classes", [])), exit=frozenset(entry.get("exit", [])),
                signals=frozenset(entry.get("signals", [])),
                fallback_classes=frozenset(entry.get("fallback-classes", []))))
        except (KeyError, TypeError, re.error) as exc:
            raise ValueError(f"{where}: cause[{i}]: {exc}") from None
    return CauseTable(tuple(out))


def table_for(manifest: Any | None) -> CauseTable:
    """The shipped table plus the manifest's own patterns (none when there is no manifest)."""
    patterns = getattr(manifest, "causes", ()) if manifest is not None else ()
    return builtin().with_user(patterns) if patterns else builtin()


def attempt_log(attempt_dir: Path | None) -> str:
    """The tail of a failed attempt's stderr then stdout, as the run directory keeps them."""
    if attempt_dir is None:
        return ""
    from repropack.run.rundir import STDERR, STDOUT, tail

    parts = []
    for name in (STDERR, STDOUT):
        try:
            parts.append(tail(Path(attempt_dir) / name, TAIL_LINES, TAIL_BYTES))
        except OSError:
            continue
    return "\n".join(p for p in parts if p)


def diagnose_dir(instance_dir: Path | None, failure: str | None, table: CauseTable | None = None,
                 *, exit_status: int | None = None, signal: int | None = None) -> Cause | None:
    """The cause of an instance's last failed attempt, read from its run directory."""
    from repropack.run.rundir import InstanceDir

    if failure == "cancelled":
        return None  # the user stopped it: no cause to find
    table = table or builtin()
    last = InstanceDir(Path(instance_dir)).last_attempt() if instance_dir is not None else None
    if last is not None and exit_status is None:
        exit_status = last.read_exit_code()
    if last is not None and signal is None:
        signal = _int(last.read_metrics().get("signal"))
    return table.match(failure=failure, exit_status=exit_status, signal=signal,
                       log=attempt_log(last.path if last else None))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
