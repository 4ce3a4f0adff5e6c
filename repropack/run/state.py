"""What the runner's loop keeps: attempts under way, each instance's result, the retry back-off.

Its own module so that the runner, the executor and the pipe units share these without
importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def retry_delay(options: Any, attempt: int) -> float:
    """Backoff before attempt `attempt` (2, 3, ...): base, 2*base, 4*base ... capped."""
    return min(options.max_backoff, options.retry_backoff * (2 ** max(0, attempt - 2)))

