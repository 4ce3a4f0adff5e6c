"""A run as its journal tells it, followed while it grows: what metrics, alerts and ``status --watch`` read.

:class:`JournalFollower` reads the records appended since its last look (whole lines only: a line
being written is read next time) and folds them into a :class:`LiveRun`: each instance's state
(queued, running, done, failed, cached, not-run), its attempts' durations and peak memory. It
never asks the runner: a second terminal, a SLURM run or a run that died read alike. A journal
rewritten under it (compaction at a run's start) is read again from its beginning.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATES = ("running", "queued", "done", "failed", "cached")  # the states metrics and watch count


@dataclass
class InstanceLive:
    id: str
    step: str
    state: str = "queued"  # queued | running | done | failed | cached | not-run
    attempt: int = 0
    started: float | None = None  # when the attempt under way was submitted
    requested_memory: int | None = None
    failure: str | None = None
    message: str = ""
    dir: str | None = None  # project-relative run directory (failed instances)
    finished: float | None = None


@dataclass(frozen=True)
class AttemptEnd:
    instance: str
    step: str
    attempt: int
    ok: bool
    failure: str | None
    wall: float | None
    peak_rss: int | None
    requested_memory: int | None
    end: float


@dataclass
class LiveRun:
    run_id: str
    record: dict[str, Any]
    instances: dict[str, InstanceLive] = field(default_factory=dict)
    attempts: list[AttemptEnd] = field(default_factory=list)
    ended: bool = False
    status: str = "running"
    end_time: float | None = None
    backend: str | None = None

    @property
    def start(self) -> float:
        value = self.record.get("start")
        return float(value) if isinstance(value, (int, float)) else time.time()

    def counts(self) -> dict[str, Counter[str]]:
        """Step -> state -> instances (every step has every state of STATES, zeros too)."""
        out: dict[str, Counter[str]] = {}
        for inst in self.instances.values():
            out.setdefault(inst.step, Counter({s: 0 for s in STATES}))[inst.state] += 1
        return out

    def durations(self, step: str) -> list[float]:
        """Wall seconds of the step's successful attempts in this run."""
        return [a.wall for a in self.attempts if a.step == step and a.ok and a.wall is not None]

    def median(self, step: str) -> float | None:
        walls = self.durations(step)
        return statistics.median(walls) if walls else None

    def running(self) -> list[InstanceLive]:
        return [i for i in self.instances.values() if i.state == "running"]

    def failed(self) -> list[InstanceLive]:
        return sorted((i for i in self.instances.values() if i.state == "failed"), key=lambda i: i.finished or 0)

    # -- folding ---------------------------------------------------------------------------
    def _instance(self, iid: str, step: Any = None) -> InstanceLive:
        inst = self.instances.get(iid)
        if inst is None:
            inst = self.instances[iid] = InstanceLive(iid, step if isinstance(step, str) else iid.split("[", 1)[0])
        return inst

    def apply(self, record: Mapping[str, Any]) -> None:
        kind = record.get("t")
        if kind in ("skipped", "not-run"):
            for iid in record.get("ids") or []:
                if isinstance(iid, str):
                    inst = self._instance(iid)
                    inst.state = "cached" if kind == "skipped" else "not-run"
            return
        if kind == "end":
            self.ended, self.status = True, str(record.get("status") or "failed")
            self.end_time = _number(record.get("time"))
            return
        iid = record.get("id")
        if not isinstance(iid, str):
            return
        inst = self._instance(iid, record.get("step"))
        if kind in ("submit", "start"):
            inst.state, inst.attempt = "running", _int(record.get("attempt")) or inst.attempt + 1
            inst.started = _number(record.get("time")) or inst.started or time.time()
            self.backend = self.backend or (record.get("backend") if isinstance(record.get("backend"), str) else None)
            req = record.get("req")
            if isinstance(req, dict):
                inst.requested_memory = _int(req.get("memory"))
        elif kind == "attempt":
            self._attempt(inst, record)
        elif kind == "done":
            inst.state, inst.finished = "done", _number(record.get("end")) or time.time()
        elif kind == "failed":
            inst.state, inst.finished = "failed", time.time()
            inst.failure, inst.message = record.get("failure"), str(record.get("message") or "")
            inst.dir = record.get("dir") if isinstance(record.get("dir"), str) else None

    def _attempt(self, inst: InstanceLive, record: Mapping[str, Any]) -> None:
        metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
        start, end = _number(metrics.get("start")), _number(metrics.get("end"))
        wall = _number(metrics.get("wall"))
        if wall is None and start is not None and end is not None:
            wall = max(0.0, end - start)
        requested = metrics.get("requested") if isinstance(metrics.get("requested"), dict) else {}
        ok = record.get("status") == "ok"
        self.attempts.append(AttemptEnd(
            inst.id, inst.step, _int(record.get("attempt")) or inst.attempt, ok,
            None if ok else str(record.get("failure") or "failed"), wall, _int(metrics.get("peak_rss")),
            _int(requested.get("memory")) or inst.requested_memory, end or time.time()))
        if not ok:
            inst.state, inst.started = "queued", None  # a retry comes, or a `failed` record
            inst.failure = str(record.get("failure") or "failed")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class JournalFollower:
    """Reads a project's journal incrementally into the :class:`LiveRun` of one run.

    ``run_id`` None follows the journal's last run. ``planned`` (instance id -> step) are the
    instances the run will walk: they count as queued until a record says otherwise.
    """

    def __init__(self, root: Path, run_id: str | None = None, planned: Mapping[str, str] | None = None):
        from repropack.run.runner import JOURNAL

        self.path = Path(root) / JOURNAL
        self.run_id = run_id
        self.planned = dict(planned or {})
        self.live: LiveRun | None = None
        self._offset = 0
        self._inode: tuple[int, int] | None = None
        self._partial = b""

    def poll(self) -> LiveRun | None:
        """Fold what was appended since the last call; the run (None until its `run` record is read)."""
        from repropack.run.statefiles import open_state

        try:
            fd = open_state(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self.live
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if (st.st_dev, st.st_ino) != self._inode or st.st_size < self._offset:
                self._inode, self._offset, self._partial, self.live = (st.st_dev, st.st_ino), 0, b"", None
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        for raw in data[:cut].splitlines():
            self._line(raw)
        return self.live

    def _line(self, raw: bytes) -> None:
        from repropack.run.journal import upgrade, well_formed

        try:
            record = json.loads(raw)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        try:
            record = upgrade(record, path=self.path)
        except Exception:  # noqa: BLE001 - a newer record than this reader knows: not this run's to show
            return
        if not well_formed(record):
            return
        run = record.get("run")
        if record.get("t") == "run" and (self.run_id is None or run == self.run_id):
            self.live = LiveRun(run, dict(record))
            for iid, step in self.planned.items():
                self.live.instances[iid] = InstanceLive(iid, step)
        elif self.live is not None and run == self.live.run_id:
            self.live.apply(record)
