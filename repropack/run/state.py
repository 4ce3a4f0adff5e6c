"""What the runner's loop keeps: attempts under way, results, retries due, the DAG's progress.

Its own module so that the loop, the attempt builder, the finisher and the pipe units share
these without importing one another.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.backends.base import Backend, JobHandle
from repropack.run import rundir


@dataclass
class InstanceResult:
    id: str
    status: str  # done | skipped | failed | not-run
    failure: str | None = None
    message: str = ""
    attempts: int = 0
    dir: Path | None = None
    command: str = ""
    backend: str = ""
    job_id: str | None = None


@dataclass
class Active:
    """An attempt that was submitted and has not ended yet."""

    inst: Any
    attempt: int
    handle: JobHandle
    backend: Backend
    start: float
    deadline: float | None
    attempt_dir: rundir.AttemptDir
    outputs: Any
    resources: Any
    command: str
    kill_at: float | None = None
    timed_out: bool = False
    slot: Path | None = None
    unit: str | None = None  # the lead of its pipe unit, when it streams to or from another instance
    timed: bool = False  # the runner enforces its time limit (the backend does not); deadline set once it runs
    staging: Mapping[str, Any] = field(default_factory=dict)  # the records' staging (the exact script again)
    runtime: str = "host"  # a container's slot is emptied after it: it could write links there


def start_clock(active: Active, started: float | None) -> None:
    """The runner's time limit counts from when the job began running, not from its submission."""
    ran = max(0.0, time.time() - started) if started is not None else 0.0
    active.deadline = time.monotonic() - ran + active.resources.time


@dataclass
class LoopState:
    """The run's changing state: owned by the Runner (its signal handler sets ``stopping``), shared by
    the loop's parts. Nothing else of the Runner is reached from the loop."""

    active: dict[str, Active] = field(default_factory=dict)  # job id -> attempt under way
    results: dict[str, InstanceResult] = field(default_factory=dict)
    delayed: list[tuple[float, str, int]] = field(default_factory=list)  # (when, instance or unit lead, attempt)
    parts: dict[str, Any] = field(default_factory=dict)  # instance -> its key's parts, once decided to run
    attempt_of: dict[str, int] = field(default_factory=dict)  # the attempt a re-queued instance starts next
    stopping: bool = False
    interrupts: int = 0
    failed_any: bool = False


class Frontier:
    """The DAG's progress. Instances joined by pipes form a unit, scheduled as one under its
    first member (the lead); ``ready`` holds what has all its dependencies complete."""

    def __init__(self, dag: Any, units: Mapping[str, tuple[str, ...]]):
        instances = dag.instances
        self.order = {iid: n for n, iid in enumerate(instances)}
        lead = {iid: members[0] for iid, members in units.items()}
        edges: dict[str, set[str]] = {lead.get(i, i): set() for i in instances}
        for iid, inst in instances.items():
            # deps outside the (selected) DAG are not run here: their outputs must already exist
            edges[lead.get(iid, iid)] |= {lead.get(d, d) for d in inst.deps if d in instances} - {lead.get(iid, iid)}
        self.waiting = {iid: len(deps) for iid, deps in edges.items()}
        self.children: dict[str, list[str]] = defaultdict(list)
        for iid, deps in edges.items():
            for dep in deps:
                self.children[dep].append(iid)
        self.ready: deque[str] = deque(i for i, n in self.waiting.items() if n == 0)

    def complete(self, iid: str) -> None:
        for child in self.children.get(iid, ()):
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                self.ready.append(child)
