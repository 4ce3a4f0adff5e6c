"""What one run recorded, in one shape whatever format wrote it: the reader's answer.

:class:`RunView` is what :func:`repropack.run.records.reader.open_run` returns for a format-1
run directory (per-instance folders) and for a format-2 one (``run.json``, ``instances.jsonl``,
``results/*.jsonl``, ``streams/*.log``, ``failed/``, ``SHA256SUMS``) alike:

- ``view.info``: :class:`RunInfo` (id, repropack version, argv, host, user, profile, start, end,
  status, manifest and lock hashes, environments);
- ``view.instances``: instance id -> :class:`InstanceRecord` (step, values, key and its parts,
  deps, command as written, environment, image, resources, declared outputs, cached_from);
- ``view.attempts(iid)``: its :class:`AttemptRecord` list in attempt order (times, CPU, peak
  memory, exit status, failure, backend, job id, outputs with digests, stream references);
- ``view.result(iid)``: its successful attempt, or None; ``view.outputs(iid)``: that attempt's
  :class:`Output` list (path, sha256, size);
- ``view.stream(attempt, "stdout")``: the bytes of a stream ("" when it was empty);
- ``view.script(iid, attempt=None)``: the script that ran (kept for failed attempts,
  re-rendered from the records for successful ones in format 2);
- ``view.checksums()``: path -> sha256 of every output the run leaves current.

Every path in here is project-relative and checked (no absolute path, no ``..``) when read:
records of a project copied from elsewhere are read, never followed out of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repropack.run.records.entries import AttemptRecord, InstanceRecord, Output, RunInfo
from repropack.run.records.files import read_run_file, read_stream


class RunView:
    """One run's records (see the module docstring). Built by the reader; read-only."""

    def __init__(self, root: Path, path: Path, info: RunInfo, instances: dict[str, InstanceRecord],
                 attempts: dict[str, list[AttemptRecord]], checksums: dict[str, str] | None = None,
                 renderer: Any = None):
        self.root = root
        self.path = path
        self.info = info
        self.instances = instances
        self._attempts = attempts
        self._checksums = checksums
        self._renderer = renderer

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def format(self) -> int:
        return self.info.format

    def attempts(self, instance_id: str) -> list[AttemptRecord]:
        return self._attempts.get(instance_id, [])

    def last_attempt(self, instance_id: str) -> AttemptRecord | None:
        found = self.attempts(instance_id)
        return found[-1] if found else None

    def result(self, instance_id: str) -> AttemptRecord | None:
        return next((a for a in reversed(self.attempts(instance_id)) if a.ok), None)

    def outputs(self, instance_id: str) -> list[Output]:
        result = self.result(instance_id)
        return list(result.outputs) if result else []

    def stream(self, attempt: AttemptRecord, name: str, *, max_bytes: int | None = None) -> bytes:
        """The bytes of ``name`` (stdout or stderr) of ``attempt``; with ``max_bytes``, only its end."""
        ref = attempt.streams.get(name)
        return read_stream(self.path, ref, max_bytes=max_bytes) if ref else b""

    def script(self, instance_id: str, attempt: AttemptRecord | None = None) -> str | None:
        """The script of ``attempt`` (default: the last): the kept file, else re-rendered from the records."""
        attempt = attempt or self.last_attempt(instance_id)
        if attempt is not None and attempt.script_file:
            data = read_run_file(self.path, attempt.script_file)
            if data is not None:
                return data.decode("utf-8", "replace")
        record = self.instances.get(instance_id)
        if record is None or self._renderer is None:
            return None
        return self._renderer(record, attempt)

    def checksums(self) -> dict[str, str]:
        """Path -> sha256 of the outputs this run leaves current (SHA256SUMS; format 1: its results)."""
        if self._checksums is not None:
            return dict(self._checksums)
        out: dict[str, str] = {}
        for iid in self.instances:
            out.update((o.path, o.sha256) for o in self.outputs(iid) if o.sha256)
        return out
