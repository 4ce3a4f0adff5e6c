"""The run journal: append-only JSON lines in ``.repropack/journal.jsonl``.

Every line is one record ``{"v": JOURNAL_VERSION, "t": TYPE, "run": RUN_ID, ...}``:

- ``run``      a run started: time, argv, host, profile, pid
- ``submit``   an attempt is about to be submitted (the intent, on disk before the job exists): id, attempt,
               backend, time; a ``start`` without it, or it without a ``start``, tells a crash in between
- ``start``    an attempt of an instance was submitted: id, attempt, backend, job, requested resources,
               slot (its folder, project-relative) and key (what a restarted runner needs to collect it)
- ``attempt``  an attempt ended: id, attempt, status ok|failed, failure class, exit, signal, start, end, metrics
- ``done``     an instance finished: id, step, key, parts (for --dry-run reasons), outputs {path: sha256},
               start, end, attempts, dir (its run directory, project-relative)
- ``failed``   an instance failed after all attempts: id, step, failure, dir
- ``skipped``  instances found up to date and not run: ids (one record per batch)
- ``not-run``  instances the run selected but never started (an upstream failed, a stop): ids
- ``adopted``  an attempt a killed run left (a ``submit`` or ``start`` with no end) was adopted and ended:
               id, attempt, job, backend, status, failure, message (see :mod:`repropack.run.adopt`)
- ``end``      the run ended: status ok|failed|interrupted, time

Lines that do not parse, or lack the fields (and types) readers rely on, are skipped
(:func:`well_formed`): a damaged line costs a rerun of its instance at most.

Durability: each batch of records reaches the kernel with one ``write`` (so a
``kill -9`` of the runner loses nothing written), and is fsynced at most every
``sync_interval`` seconds and on close (so a power cut costs at most that
window, never a torn record: a truncated last line is dropped on read and cut
off before the next append). Records are read through :func:`upgrade`, the one
path from older versions. Readers skip record types they do not know.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.errors import FormatVersionError
from repropack.run.statefiles import open_state

JOURNAL_VERSION = 1
JOURNAL_NAME = "journal.jsonl"
STATE_KINDS = ("start", "attempt", "done", "failed")  # the records that say where an instance stands

# version -> function turning a record of that version into one of version + 1
_MIGRATIONS: dict[int, Any] = {}


def upgrade(record: dict[str, Any], *, path: Path | str = JOURNAL_NAME) -> dict[str, Any]:
    version = record.get("v", 1)
    if not isinstance(version, int) or version > JOURNAL_VERSION:
        raise FormatVersionError("journal", path, version if isinstance(version, int) else -1, JOURNAL_VERSION)
    while version < JOURNAL_VERSION:
        record = _MIGRATIONS[version](record)
        version += 1
        record["v"] = version
    return record


def read_records(path: Path, kinds: tuple[str, ...] | None = None) -> Iterator[dict[str, Any]]:
    """Every complete record (of the given kinds), upgraded; a torn line (a crash mid-write) is skipped.

    Filtering by kind looks at the raw line first, so records that are not wanted are never parsed.
    """
    try:
        handle = os.fdopen(open_state(path, os.O_RDONLY), "rb")
    except FileNotFoundError:
        return
    markers = tuple(f'"t":"{k}"'.encode() for k in kinds) if kinds else None
    with handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return  # the torn tail of an interrupted write
            if markers is not None and not any(m in raw for m in markers):
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                record = upgrade(record, path=path)
                if well_formed(record):
                    yield record


_INSTANCE_KINDS = frozenset(("start", "attempt", "done", "failed"))
_TABLES = ("outputs", "parts", "streams", "metrics", "req")


def well_formed(record: dict[str, Any]) -> bool:
    """Has the fields, of the types, that readers rely on. A damaged line (a disk error, an
    edit) is skipped like a torn one: it costs a rerun of its instance at most, never a crash."""
    if type(record.get("t")) is not str or type(record.get("run")) is not str:
        return False
    if record["t"] in _INSTANCE_KINDS:
        if type(record.get("id")) is not str or not isinstance(record.get("dir", ""), (str, type(None))):
            return False
        return all(isinstance(record.get(name, {}), (dict, type(None))) for name in _TABLES)
    return True


def repair_tail(fd: int) -> None:
    """Cut a torn last line so the next record starts on a line of its own."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return
    chunk = 1 << 16
    pos = size
    while pos > 0:
        start = max(0, pos - chunk)
        data = os.pread(fd, pos - start, start)
        if pos == size and data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            return
        pos = start
    os.ftruncate(fd, 0)


class Journal:
    """Appends records for one run; records are buffered until :meth:`flush`."""

    def __init__(self, path: Path, run_id: str, *, sync_interval: float = 0.5):
        self.path = Path(path)
        self.run_id = run_id
        self.sync_interval = sync_interval
        # never through a link: a journal linked to a file elsewhere would be appended to and cut
        self._fd = open_state(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        repair_tail(self._fd)
        self._pending: list[bytes] = []
        self._last_sync = time.monotonic()
        self._unsynced = False
        # called first by every flush: the run's records, so no journal line names one not yet written
        self.before_flush: Any = None

    def append(self, kind: str, **fields: Any) -> None:
        record = {"v": JOURNAL_VERSION, "t": kind, "run": self.run_id, **fields}
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)
        self._pending.append(line.encode("utf-8") + b"\n")

    def flush(self) -> None:
        """Hand buffered records to the kernel in one write; fsync if the interval passed."""
        if self.before_flush is not None:
            self.before_flush()
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            view = memoryview(data)
            try:
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError as exc:  # a full disk: cut the torn record so the file stays whole
                repair_tail(self._fd)
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
            self._unsynced = True
        if self._unsynced and time.monotonic() - self._last_sync >= self.sync_interval:
            self.sync()

    def sync(self) -> None:
        if self._pending:
            self.flush()
        if self._unsynced:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(self.path)) from None
            self._unsynced = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class JournalState:
    """What the journal says, folded: the latest finish of each instance and the last run."""

    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance id -> latest done record
    last_run: dict[str, Any] | None = None  # the last `run` record
    last_run_records: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0

    def instance_states(self) -> dict[str, dict[str, Any]]:
        """Instance id -> its latest record of the last run (start/attempt/done/failed)."""
        states: dict[str, dict[str, Any]] = {}
        for record in self.last_run_records:
            if "id" in record and record.get("t") in STATE_KINDS:
                states[record["id"]] = record
        return states


def load_state(path: Path, *, last_run: bool = True) -> JournalState:
    """The folded journal; ``last_run=False`` reads only what resume needs (done records), fast."""
    state = JournalState()
    if not last_run:
        for record in read_records(path, kinds=("done",)):
            state.done[record["id"]] = record
        return state
    for record in read_records(path):
        state.lines += 1
        kind = record.get("t")
        if kind == "run":
            state.last_run = record
            state.last_run_records = []
        elif state.last_run is not None and record.get("run") == state.last_run.get("run"):
            state.last_run_records.append(record)
        if kind == "done":
            state.done[record["id"]] = record
    return state


COMPACT_MIN_LINES = 20_000


def needs_compaction(path: Path, done: int) -> bool:
    """Cheap test (a line count, no parsing): is the journal mostly superseded records?"""
    try:
        with os.fdopen(open_state(path, os.O_RDONLY), "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:
        return False
    return lines >= COMPACT_MIN_LINES and lines >= 3 * (done + 1)


def compact(path: Path, state: JournalState) -> bool:
    """Rewrite the journal to the latest done per instance plus the last run, when it pays.

    Called only under the project's run lock. The rewrite is atomic (write, fsync, rename).
    """
    keep_last = state.last_run_records
    live = len(state.done) + len(keep_last) + 1
    if state.lines < COMPACT_MIN_LINES or state.lines < 3 * live:
        return False
    last_id = state.last_run.get("run") if state.last_run else None
    tmp = path.with_name(path.name + ".compact")
    with os.fdopen(open_state(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as handle:
        for record in state.done.values():
            if record.get("run") != last_id:
                handle.write(_line(record))
        if state.last_run is not None:
            handle.write(_line(state.last_run))
            for record in keep_last:
                handle.write(_line(record))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return True


def _line(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8") + b"\n"
