"""The small interface every backend implements (local, SLURM, AWS Batch).

Modelled on snakemake-interface-executor-plugins (run a job, check many active
jobs in one go, cancel) and submitit (a job handle you can poll and cancel).

Contract
--------
``submit(job) -> JobHandle``
    Writes ``job.script`` (the exact ``script.sh``) into ``job.attempt_dir`` (which the
    runner has created) and
    starts or queues the job; returns at once with a handle whose ``job_id`` is
    the backend's own id (a pid, a container id, a SLURM job id, a Batch job id).
    The job must leave ``stdout``, ``stderr``, ``exit_code`` and
    ``metrics.json`` in the attempt directory (see :mod:`repropack.run.rundir`);
    a remote backend may copy them back in :meth:`poll`. Raises
    :class:`~repropack.errors.BackendError` when the job cannot be submitted.

``poll(handles, wait=0.0) -> dict[job_id, JobStatus]``
    Checks many handles in one call (one ``sacct``, one ``DescribeJobs`` per 100
    ids). Returns a status for every handle that has reached a terminal state
    (SUCCEEDED or FAILED) and may include non-terminal ones. Each terminal
    status is reported until the handle is released with :meth:`forget`.
    Blocks at most ``wait`` seconds for something to finish (remote backends
    may simply return), and never longer than ``wait`` plus the backend's own
    time-out: an engine that does not answer raises ``BackendError``; errors
    are never swallowed and a poller never hangs.

``cancel(handles, force=False)``
    Asks the jobs to stop (SIGTERM, ``scancel``, ``TerminateJob``); with
    ``force`` kills them at once. Their terminal status still arrives via poll.

``cleanup_leftovers(project_label)``
    Removes what an earlier run that was killed left behind (containers
    labelled with its project), called once before a run starts.

``close()``
    Releases engine connections; does not stop running jobs.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


# Failure classes kept per attempt (journal, metrics.json, report).
EXIT, SIGNAL, OOM, TIMEOUT, LOST, CANCELLED = "exit", "signal", "oom", "timeout", "lost", "cancelled"


@dataclass(frozen=True)
class JobResources:
    cpus: int = 1
    memory: int | None = None  # bytes
    time: int | None = None  # seconds
    gpus: int = 0

    def to_record(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "memory": self.memory, "time": self.time, "gpus": self.gpus}


@dataclass(frozen=True)
class Job:
    """One attempt of one step instance, everything a backend needs to run it."""

    instance_id: str
    attempt: int
    run_id: str
    project: Path  # absolute project root (the working directory of the script)
    attempt_dir: Path  # absolute; script.sh, stdout, stderr, exit_code, metrics.json go here
    script: str  # the text of script.sh (bash; `set -euo pipefail` at its top)
    env: Mapping[str, str]  # the step's whole environment (fixed surroundings + profile pass-through)
    resources: JobResources
    runtime: str = "host"  # host | docker | apptainer
    image: str | None = None  # docker image reference or SIF path
    env_prefix: Path | None = None  # host: the materialized environment (its bin/ goes first on PATH)
    writable: tuple[Path, ...] = ()  # the only places a container may write (staging, attempt dir)
    runtime_flags: tuple[str, ...] = ()  # profile's extra flags (apptainer-flags, docker-flags)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def script_path(self) -> Path:
        return self.attempt_dir / "script.sh"

    @property
    def stdout_path(self) -> Path:
        return self.attempt_dir / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.attempt_dir / "stderr"


@dataclass(frozen=True)
class JobHandle:
    backend: str
    job_id: str
    instance_id: str
    attempt: int


@dataclass(frozen=True)
class JobStatus:
    handle: JobHandle
    state: JobState
    exit_code: int | None = None  # shell convention: 128+N when killed by signal N
    signal: int | None = None
    failure: str | None = None  # EXIT | SIGNAL | OOM | TIMEOUT | LOST | CANCELLED
    message: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)  # start, end, wall, cpu, peak_rss


class Backend(ABC):
    name: str = "backend"

    @abstractmethod
    def submit(self, job: Job) -> JobHandle: ...

    @abstractmethod
    def poll(self, handles: Sequence[JobHandle], wait: float = 0.0) -> dict[str, JobStatus]: ...

    @abstractmethod
    def cancel(self, handles: Iterable[JobHandle], *, force: bool = False) -> None: ...

    def forget(self, handles: Iterable[JobHandle]) -> None:
        """The runner has taken these terminal statuses; the backend may drop its state."""

    def cleanup_leftovers(self, project_label: str) -> list[str]:
        return []

    def close(self) -> None:
        pass

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
