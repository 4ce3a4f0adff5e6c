"""The runner's side of the format-2 records: what it knows about instances and attempts, turned
into records by :mod:`.format` and written by :class:`.writer.RecordsWriter`.

The loop calls :meth:`Recorder.planned` when an instance is decided (to run or up to date),
:meth:`succeeded` / :meth:`failed` when an attempt ends, :meth:`flush` before the journal is
flushed (so the journal never names a result that is not on disk) and :meth:`end` once.
An instance the run never reached (an upstream failed, a stop) has no line: it was not planned.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repropack.manifest.placeholders import quote_path
from repropack.run.records import format as rf
from repropack.run.records.writer import RecordsWriter

# what an attempt folder may hold besides the staged outputs, moved under failed/ when it fails
ATTEMPT_FILES = (rf.SCRIPT, rf.STDOUT, rf.STDERR, "runtime.log")


class Recorder:
    def __init__(self, root: Path, run_dir: Path | str, hashes: Any = None, writer: str = rf.LOCAL_WRITER,
                 redact: Any = None):
        self.root = Path(root)
        # no record holds a secret: commands are masked like every message (the re-rendered script too)
        self.redact = redact or (lambda text: text)
        self.run_dir = os.fspath(run_dir)
        self.hashes = hashes
        self.w = RecordsWriter(self.run_dir, writer)
        self.info: dict[str, Any] = {}
        self.current: dict[str, str] = {}  # output path -> digest, of everything the run leaves current
        self.lists: dict[str, str] = {}  # instance id -> its {inputs:list} file (project-relative)
        self.used: dict[tuple[str | None, str], str | None] = {}  # (environment, runtime) -> image reference

    # -- the run -------------------------------------------------------------------------
    def start(self, info: Mapping[str, Any]) -> None:
        self.info = dict(info)
        self.w.run(self.info)

    def end(self, status: str, ended: float, tree: Any, environments: Mapping[str, Any] | None = None) -> None:
        """SHA256SUMS of the outputs left current, run.json with the end, everything synced."""
        from repropack.run.records.sums import sums_bytes, sums_entries

        try:
            self.w.write_whole(rf.SUMS, sums_bytes(sums_entries(tree, self.current)))
            self.info.update(status=status, ended=ended)
            if environments:
                self.info["environments"] = dict(environments)
            self.w.run(self.info)
        finally:
            self.w.close()

    def flush(self) -> None:
        self.w.flush()

    # -- instances -----------------------------------------------------------------------
    def planned(self, inst: Any, parts: Any, profile: Any, resources: Any, *, image: str | None = None,
                cached_from: str | None = None, outputs: Mapping[str, str] | None = None) -> str:
        """An instance was decided: to run (its first attempt is being prepared), or up to date
        (``cached_from`` the run that made its ``outputs``, path -> digest, which this run leaves
        current too). Returns the declared command."""
        files = dict(parts.files) if parts is not None else {}
        inputs = [self._input(path, files.get(path)) for path in inst.inputs]
        key_parts = parts.to_record() if parts is not None else {}
        key_parts.pop("files", None)
        sources = {path: files[path] for path in inst.sources if path in files}
        if sources:
            key_parts["source_files"] = sources
        self.w.instance(rf.instance_record(
            id=inst.id, step=inst.step.name, values=inst.wildcards, key=parts.key if parts is not None else None,
            key_parts=key_parts, inputs=inputs, deps=inst.deps, command=(command := self.declared(inst, resources.cpus)),
            environment=inst.step.environment, image=image, profile=profile.name, runtime=profile.runtime,
            backend=profile.backend, resources=resources.to_record(), outputs=inst.outputs,
            retries=inst.step.retries, cached_from=cached_from, inputs_list=self.lists.get(inst.id)))
        if outputs:
            self.current.update(outputs)
        self.used.setdefault((inst.step.environment, profile.runtime), image)
        return command

    def _input(self, path: str, digest: str | None) -> dict[str, Any]:
        size = None
        known = self.hashes.known(path) if self.hashes is not None else None
        if known is not None:
            digest, size = digest or known[0], known[1]
        return rf.input_entry(path, digest, size)

    def declared(self, inst: Any, cpus: int) -> str:
        """The command as the user wrote it, with the declared paths (never a staging path), masked."""
        needs_list = "{inputs:list}" in inst.step.run
        return self.redact(inst.command(inputs_list=self.lists.get(inst.id, "") if needs_list else None, cpus=cpus))

    def inputs_list(self, inst: Any) -> str:
        """Write the instance's ``{inputs:list}`` file (once) under ``lists/``; its project path."""
        rel = self.lists.get(inst.id)
        if rel is None:
            from repropack.run.rundir import instance_dirname

            name = f"lists/{instance_dirname(inst.id)}.list"
            self.w.write_whole(name, "".join(f"{p}\n" for p in inst.inputs).encode("utf-8", "surrogateescape"))
            rel = self.lists[inst.id] = os.path.relpath(f"{self.run_dir}/{name}", self.root)
        return rel

    # -- attempts ------------------------------------------------------------------------
    def staging(self, inst: Any, cpus: int, executed: str, words: Mapping[str, str], *,
                declared: str | None = None) -> dict[str, Any]:
        """``words``: declared output path -> the path the step wrote instead (staging, FIFO)."""
        quoted = {quote_path(a): quote_path(b) for a, b in words.items() if a != b}
        return rf.staging_record(declared if declared is not None else self.declared(inst, cpus), self.redact(executed),
                                 quoted)

    def succeeded(self, active: Any, status: Any, metrics: Mapping[str, Any],
                  collected: Mapping[str, tuple[str, os.stat_result]], staging: Mapping[str, Any]) -> None:
        """A successful attempt: one results line; its non-empty streams appended to the log."""
        inst, adir = active.inst, os.fspath(active.attempt_dir.path)
        outputs = [rf.output_entry(path, digest, None if digest.startswith("tree:") else st.st_size)
                   for path, (digest, st) in collected.items()]
        streams = self.w.streams(inst.id, active.attempt, {n: f"{adir}/{n}" for n in rf.STREAM_NAMES})
        self.w.result(_extras(rf.result_record(
            instance=inst.id, attempt=active.attempt, writer=self.w.writer, backend=active.backend.name,
            job_id=active.handle.job_id, metrics=metrics, exit_status=status.exit_code if status is not None else 0,
            signal=status.signal if status is not None else None,
            failure=None, message=None, outputs=outputs, streams=streams, staging=staging,
            requested=active.resources.to_record()), metrics))
        self.current.update((path, digest) for path, (digest, _) in collected.items())

    def failed(self, inst: Any, attempt: int, *, attempt_dir: str | None, failure: str, message: str,
               metrics: Mapping[str, Any], status: Any = None, backend: str = "", staging: Mapping[str, Any] = (),
               requested: Mapping[str, Any] | None = None) -> str:
        """A failed attempt: its files moved to ``failed/<inst-dir>/attempt-<n>/`` with metrics.json and
        exit_code beside them, and a results line; returns that folder's absolute path."""
        from repropack.run.rundir import instance_dirname

        files = {name: f"{attempt_dir}/{name}" for name in ATTEMPT_FILES} if attempt_dir else {}
        exit_status = status.exit_code if status is not None else None
        kept = {**metrics, "failure": failure, "message": message, "exit_code": exit_status}
        rel, streams = self.w.keep_failed(instance_dirname(inst.id), attempt, files,
                                          json.dumps(kept, sort_keys=True, default=str).encode() + b"\n")
        if exit_status is not None:
            self.w.write_whole(f"{rel}/exit_code", b"%d\n" % exit_status)
        self.w.result(_extras(rf.result_record(
            instance=inst.id, attempt=attempt, writer=self.w.writer, backend=backend,
            job_id=status.handle.job_id if status is not None else None, metrics=metrics, exit_status=exit_status,
            signal=status.signal if status is not None else None, failure=failure, message=message, outputs=[],
            streams=streams, staging=dict(staging), requested=requested or metrics.get("requested") or {},
            failed_dir=rel), metrics))
        return f"{self.run_dir}/{rel}"


EXTRA_METRICS = ("cost", "batch_job_id", "resubmitted")  # a remote backend's figures kept beside the fields


def _extras(record: dict[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    for name in EXTRA_METRICS:
        if metrics.get(name) is not None:
            record[name] = metrics[name]
    return record


def run_record(root: Path, *, run_id: str, argv: list[str], profile: str | None, started: float, instances: int,
               masks: list[str]) -> dict[str, Any]:
    """run.json as the run starts: the manifest and lock it read, by digest."""
    import getpass
    import socket

    from repropack import __version__

    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return rf.run_record(run_id=run_id, repropack_version=__version__, argv=argv, host=socket.gethostname(),
                         user=user, profile=profile, started=started, manifest=_file_digest(root, "repropack.toml"),
                         lock=_file_digest(root, "repropack.lock"), environments={}, pid=os.getpid(),
                         instances=instances, masks=masks)


def _file_digest(root: Path, rel: str) -> dict[str, Any] | None:
    import hashlib

    try:
        data = (Path(root) / rel).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return {"path": rel, "sha256": hashlib.sha256(data).hexdigest()}


def environments_identity(root: Path, used: Mapping[tuple[str | None, str], str | None], environments: Any,
                          hashes: Any) -> dict[str, dict[str, Any]]:
    """run.json's ``environments``: per environment (``NAME@RUNTIME`` when one ran on two runtimes),
    its lock hash and what its steps ran in: the image ID and registry digest from the build
    record, the SIF's sha256."""
    build = _latest_build(root)
    image = build.get("image") or {}
    pushed = build.get("pushed") or {}
    sif = build.get("sif") or {}
    names = [env or "host" for env, _ in used]
    out: dict[str, dict[str, Any]] = {}
    for (env, runtime), reference in used.items():
        name = env or "host"
        key = name if names.count(name) == 1 else f"{name}@{runtime}"
        lock = environments.lock_hash(env)
        entry = rf.environment_identity(runtime=runtime, lock_sha256=None if lock == "host" else lock)
        if runtime == "docker" and reference in (image.get("reference"), image.get("id"), pushed.get("reference")):
            entry.update(image_id=image.get("id"), image_digest=pushed.get("digest"))
        elif runtime == "apptainer" and reference:
            entry["sif_digest"] = sif.get("sha256") if sif.get("path") == reference else _sif_digest(root, reference,
                                                                                                    hashes)
            entry["image_id"] = sif.get("image_id") if sif.get("path") == reference else None
        out[key] = entry
    return out


def _latest_build(root: Path) -> dict[str, Any]:
    try:
        from repropack.build.record import latest_record

        return latest_record(root) or {}
    except (ImportError, OSError, ValueError):
        return {}


def _sif_digest(root: Path, reference: str, hashes: Any) -> str | None:
    try:
        rel = os.path.relpath(reference, root)
        if not rel.startswith("..") and hashes is not None:
            return hashes.digest(rel)
        from repropack.run.checksums import sha256_file

        return sha256_file(reference)
    except (OSError, ValueError):
        return None
