"""The entries of the reader's answer: a run, an instance, an attempt, an output, a stream reference.

The field names follow format 2 (docs/schema/records-v2.schema.json); format-1 records are read
into the same entries (:mod:`.v1`), with what format 1 did not record left None or empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Output:
    path: str
    sha256: str | None
    size: int | None = None
    type: str = "file"


@dataclass(frozen=True)
class StreamRef:
    """Where a stream's bytes are: ``file`` (relative to the run directory), from ``offset``, ``length``
    bytes; ``length`` None means to the end of the file (format 1 keeps one file per stream)."""

    file: str
    offset: int = 0
    length: int | None = None


@dataclass
class RunInfo:
    run_id: str
    format: int
    repropack_version: str | None = None
    argv: list[str] = field(default_factory=list)
    host: str | None = None
    user: str | None = None
    profile: str | None = None
    started: float | None = None
    ended: float | None = None
    status: str | None = None
    manifest: dict[str, Any] | None = None
    lock: dict[str, Any] | None = None
    environments: dict[str, Any] = field(default_factory=dict)
    masks: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class InstanceRecord:
    id: str
    step: str
    values: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    key_scheme: str | None = None
    key_parts: dict[str, Any] = field(default_factory=dict)
    deps: list[str] | None = None  # None: not recorded (format 1)
    command: str | None = None  # as the user wrote it (format 2); None in format 1
    environment: str | None = None
    image: str | None = None
    profile: str | None = None
    backend: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    cached_from: str | None = None
    dir: str | None = None  # format 1: the instance folder, project-relative
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttemptRecord:
    instance: str
    attempt: int
    writer: str | None = None
    backend: str | None = None
    job_id: str | None = None
    start: float | None = None
    end: float | None = None
    wall: float | None = None
    cpu: float | None = None
    peak_rss: int | None = None
    peak_rss_source: str | None = None
    cpu_source: str | None = None
    exit_status: int | None = None
    signal: int | None = None
    failure: str | None = None
    message: str = ""
    requested: dict[str, Any] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    streams: dict[str, StreamRef] = field(default_factory=dict)
    staging: dict[str, Any] = field(default_factory=dict)
    script_file: str | None = None  # relative to the run directory, when the script was kept
    where: str = ""  # the file (and line) this record came from, for messages
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failure is None and self.exit_status == 0
