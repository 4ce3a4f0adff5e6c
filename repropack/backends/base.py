"""The small interface every backend implements (local, SLURM, AWS Batch; a test's fake the same way).

Modelled on snakemake-interface-executor-plugins (run a job, check many active
jobs in one go, cancel) and submitit (a job handle you can poll and cancel).
A backend is found by name through :mod:`repropack.backends.registry`, which
also holds what it declares about itself (:class:`Capabilities`); the runner
reads those declarations and never asks which backend it has.

Who does what
-------------
The runner prepares each attempt (its slot folder, its ``script.sh`` text, its
environment, its output paths) and, when the backend reports a terminal status,
checks, hashes and moves the outputs and writes the run records (format 2, see
:mod:`repropack.run.records`: the attempt's results line, its streams, a failed
attempt's folder). A backend runs the script: the step's ``stdout`` and
``stderr`` land in the attempt's slot (a remote backend copies them back before
it reports the job terminal), and the figures it measured travel in
:attr:`JobStatus.metrics`. A remote backend measures and hashes beside the step
with the job-side results script (below).

Contract
--------
``submit(job) -> JobHandle``
    Writes ``job.script`` into ``job.attempt_dir`` (which the runner has
    created) as ``script.sh`` and starts or queues the job; returns at once with
    a handle whose ``job_id`` is the backend's own id (a pid, a container id, a
    SLURM job id, a Batch job id) and whose ``started`` is the wall time the job
    began running when it already runs (local), else None. Raises
    :class:`~repropack.errors.BackendError` when the job cannot be submitted.

``submit_many(jobs) -> list[JobHandle | Exception]``
    Submits several at once, one entry per job in order (a handle, or the
    ``BackendError``/``OSError`` that job met). The default loops over
    ``submit``; SLURM makes arrays and packs. The jobs of one pipe group are
    always passed in one call.

``poll(handles, wait=0.0) -> dict[job_id, JobStatus]``
    Checks many handles in one call (one ``sacct``, one ``DescribeJobs`` per 100
    ids). Returns a status for every handle that has reached a terminal state
    (SUCCEEDED or FAILED) and may include non-terminal ones (a RUNNING status
    with ``started`` set tells the runner when the job's clock starts). Each
    terminal status is reported until the handle is released with
    :meth:`forget`. Blocks at most ``wait`` seconds for something to finish; a
    remote backend may return at once: the runner then sleeps out the rest of
    the backend's cadence itself (``poll_interval``, doubling after each quiet
    poll up to ``poll_max_interval``), so no backend can make it spin. An engine
    that does not answer raises ``BackendError`` within its own time-out; the
    runner retries a failing poll ``POLL_ERRORS_LOST`` times with back-off, then
    ends the affected jobs as ``lost`` with the error as their message.

``cancel(handles, force=False)``
    Asks the jobs to stop (SIGTERM, ``scancel``, ``TerminateJob``); with
    ``force`` kills them at once. Their terminal status still arrives via poll.

``adopt(handles)``
    Re-attaches to jobs an earlier runner submitted and never saw end: on
    restart the runner reads the killed run's ``submit`` intents and ``start``
    records with no end (:mod:`repropack.run.adopt`), passes them here, polls
    them to their end and journals each as ``adopted`` before it submits
    anything. A handle from an intent alone has the job id
    ``?<run>/<instance>/<attempt>`` (the id was never recorded): the backend
    may find the job by its labels, else reports it lost. A backend whose jobs
    do not survive the runner (``Capabilities.survives_runner`` false: local)
    reports each adopted handle as ``lost`` at the next poll.

``cleanup_leftovers(project_label)``
    Removes what an earlier run that was killed left behind (containers
    labelled with its project), called once before a run starts.

``notes``
    What the backend learned that the user should hear once (SLURM: accounting does not
    answer; Batch: a job resubmitted after a Spot reclaim). The runner shows each new entry
    once, after a poll.

``close()``
    Releases engine connections; does not stop running jobs.

Job-side results
----------------
A remote backend runs :mod:`repropack.backends.jobside` beside the step on the
execution side: on the node around ``apptainer exec`` (SLURM), or inside a
container that has no repropack installed (Batch). It may assume a POSIX shell
and at most Python's standard library (``jobside.sh`` with ``sha256sum`` where
no ``python3`` exists). It runs the attempt's script with exactly ``job.env``,
measures wall, CPU and peak memory (the job's cgroup where there is one), hashes
each of ``job.outputs`` (sha256, size) and appends one results line (run records
format 2) to ``results/<writer>.jsonl`` of the run directory, with the attempt's
streams framed in ``streams/<writer>.log``. The backend turns those lines into
statuses (their figures in :attr:`JobStatus.metrics`, the digests under
``metrics["outputs"]``); today the runner still hashes outputs itself on the
shared filesystem as well.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.errors import BackendError

# What marks a run's jobs: every step's environment carries RUN_ENV=<run id>, every container the
# labels LABEL_RUN=<run id> and LABEL_PROJECT=<project label> (clean-up finds them by these).
RUN_ENV = "REPROPACK_RUN_ID"
LABEL_RUN = "repropack.run"
LABEL_PROJECT = "repropack.project"


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
    # "dev:inode" of each writable path as the runner checked it (no link on the way); a container
    # compares its mounts with these before the step runs (see backends.runtimes.GUARD)
    writable_ids: tuple[str, ...] = ()
    runtime_flags: tuple[str, ...] = ()  # profile's extra flags (apptainer-flags, docker-flags)
    labels: Mapping[str, str] = field(default_factory=dict)
    step: str = ""  # the step's name: a batch backend groups the instances of one step into an array
    options: Mapping[str, Any] = field(default_factory=dict)  # the profile's backend options (partition, pack, ...)
    # (declared path, path the step writes), project-relative: job-side results hash what was written
    outputs: tuple[tuple[str, str], ...] = ()
    # without a shared filesystem (staging, Capabilities.shared_filesystem false) the backend carries these
    # project-relative files to the job: the step's inputs, sources and input list
    inputs: tuple[str, ...] = ()
    profile: str = ""  # the profile's name (a backend that serves several profiles tells them apart)

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
    started: float | None = None  # wall time it began running, when it already ran at submit (local)


@dataclass(frozen=True)
class JobStatus:
    handle: JobHandle
    state: JobState
    exit_code: int | None = None  # shell convention: 128+N when killed by signal N
    signal: int | None = None
    failure: str | None = None  # EXIT | SIGNAL | OOM | TIMEOUT | LOST | CANCELLED
    message: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)  # start, end, wall, cpu, peak_rss
    started: float | None = None  # wall time it began running (a RUNNING or terminal status), if known


@dataclass(frozen=True)
class Capabilities:
    """What a backend does itself, declared once; the runner does the rest.

    ``cpus``, ``memory`` and ``gpus`` are its capacity: the most a run may use at once
    there, and so the most one job may ask for (local: this machine, lowered by the
    profile's caps; remote: the profile's or the partition's limits). None: no limit.
    """

    shared_filesystem: bool = True  # the job sees the project's files; False: they are staged
    enforces_time: bool = False  # False: the runner stops a step at its time limit
    enforces_memory: bool = False  # False: a step's memory is a scheduling share only
    co_schedules: bool = False  # can start a pipe group's members at once, side by side
    survives_runner: bool = False  # its jobs run on when the runner dies (adopt re-attaches)
    cpus: int | None = None
    memory: int | None = None  # bytes
    gpus: int | None = None


@dataclass(frozen=True)
class BackendContext:
    """What the runner gives a backend it creates for one run."""

    run_id: str
    runtimes: frozenset[str] = frozenset()  # the runtimes the run's profiles use on this backend
    root: Path | None = None  # the project root (a remote backend keeps its job index and records there)
    profiles: tuple[Any, ...] = ()  # the run's profiles on this backend (a remote one checks them before any job)


class Backend(ABC):
    name: str = "backend"
    poll_interval: float = 1.0  # seconds between polls while nothing changes ...
    poll_max_interval: float = 10.0  # ... doubling after each quiet poll up to this
    # What the backend learned that the user should hear once, in order (SLURM: sacct does not answer,
    # so squeue and the results files are relied on); the runner shows each new entry once after a poll.
    notes: Sequence[str] = ()

    @abstractmethod
    def submit(self, job: Job) -> JobHandle: ...

    def submit_many(self, jobs: Sequence[Job]) -> list[JobHandle | Exception]:
        """One handle (or the error that job met) per job, in order; a batch backend packs them."""
        out: list[JobHandle | Exception] = []
        for job in jobs:
            try:
                out.append(self.submit(job))
            except (BackendError, OSError) as exc:
                out.append(exc)
        return out

    @abstractmethod
    def adopt(self, handles: Sequence[JobHandle]) -> None: ...

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
