"""What provenance is built from: one run as its records hold it (records v2, docs/runner.md).

Plain dataclasses, filled from the run records by :mod:`repropack.provenance.source` (never from
today's manifest): the crate and SBOM builders take a :class:`RunFacts` and nothing else, so they
can be tested on hand-made runs and read records of any format the records reader upgrades.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What became of one planned instance in this run (the crate's actionStatus follows from it).
OK, FAILED, CACHED, NOT_RUN, INTERRUPTED = "ok", "failed", "cached", "not-run", "interrupted"
INSTANCE_STATES = (OK, FAILED, CACHED, NOT_RUN, INTERRUPTED)


@dataclass(frozen=True)
class FileFact:
    """A file (or folder output, ``sha256`` then being its ``tree:`` digest) as recorded."""

    path: str  # project-relative, POSIX
    sha256: str | None = None  # bare hex (a ``sha256:`` prefix is dropped by the source)
    size: int | None = None  # bytes
    type: str = "file"  # file | tree (a folder output)


@dataclass
class AttemptFact:
    attempt: int
    start: float | None = None  # epoch seconds
    end: float | None = None
    wall: float | None = None  # seconds
    cpu: float | None = None  # user + system seconds
    peak_rss: int | None = None  # bytes
    peak_rss_source: str | None = None
    cpu_source: str | None = None
    exit_status: int | None = None
    signal: int | None = None
    failure: str | None = None  # None when it succeeded
    message: str = ""
    backend: str | None = None
    job_id: str | None = None
    outputs: list[FileFact] = field(default_factory=list)


@dataclass
class InstanceFact:
    id: str
    step: str
    command: str = ""  # as the user wrote it, declared paths (never staging paths)
    values: dict[str, Any] = field(default_factory=dict)  # foreach values
    environment: str | None = None
    image: str | None = None
    profile: str | None = None
    backend: str | None = None
    runtime: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)  # cpus, memory, time, gpus as requested
    inputs: list[FileFact] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # declared output paths
    deps: list[str] = field(default_factory=list)
    key: str | None = None
    cached_from: str | None = None  # the run that made the outputs this run reused
    cached_outputs: list[FileFact] = field(default_factory=list)  # as that run recorded them (sizes)
    attempts: list[AttemptFact] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.cached_from is not None:
            return CACHED
        if not self.attempts:
            return NOT_RUN
        last = self.attempts[-1]
        if last.end is None:
            return INTERRUPTED
        return OK if last.failure is None and last.exit_status in (0, None) else FAILED

    @property
    def start(self) -> float | None:
        starts = [a.start for a in self.attempts if a.start is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> float | None:
        ends = [a.end for a in self.attempts if a.end is not None]
        return max(ends) if ends else None

    @property
    def produced(self) -> list[FileFact]:
        """The outputs of the successful attempt (none for a failed or unfinished instance)."""
        return list(self.attempts[-1].outputs) if self.state == OK else []


@dataclass(frozen=True)
class EnvironmentFact:
    name: str
    lock_sha256: str | None = None  # the environment's lock identity (environment_lock_hash)
    lock_files: tuple[FileFact, ...] = ()  # locks/<env>/... with their sha256
    image_id: str | None = None  # Docker image ID (sha256 of the config)
    image_digest: str | None = None  # registry manifest digest
    image_name: str | None = None
    sif_digest: str | None = None
    runtime: str | None = None


@dataclass(frozen=True)
class BaseImageFact:
    reference: str | None = None  # as the manifest names it, e.g. python:3.11-slim
    digest: str | None = None  # sha256:...
    digest_kind: str | None = None  # manifest | image-id


@dataclass
class RunFacts:
    run_id: str
    status: str  # ok | failed | interrupted | running | crashed
    repropack_version: str
    project: str  # the project's name
    license: str | None = None  # the project's license as its manifest states it (SPDX id or text)
    root: str = ""  # the project folder (absolute) the records were read from
    argv: list[str] = field(default_factory=list)  # redacted
    host: str = ""
    user: str = ""
    profile: str | None = None
    started: float | None = None
    ended: float | None = None
    manifest: FileFact | None = None
    lock: FileFact | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the values this run used (redacted)
    environments: dict[str, EnvironmentFact] = field(default_factory=dict)
    base_image: BaseImageFact | None = None
    instances: list[InstanceFact] = field(default_factory=list)  # planned, in run order
    sums: dict[str, str] = field(default_factory=dict)  # SHA256SUMS: path -> hex
    format: int = 2  # the records format the facts were read from
    redacted: bool = False  # True when the source already masked every text (commands, messages, argv, params)

    def count(self, state: str) -> int:
        return sum(1 for inst in self.instances if inst.state == state)
