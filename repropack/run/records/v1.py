"""Format 1 of the run records, read into the reader's view (the upgrade path's first step).

A format-1 run folder holds ``run.json`` (no ``format`` key) and one folder per instance that
the run started (``instance.json``, ``checksums``, ``attempt-<n>/`` with ``script.sh``,
``stdout``, ``stderr``, ``exit_code``, ``metrics.json``): the layout in the docstring of
:mod:`repropack.run.rundir`. Format 1 recorded no dependencies (``deps`` is None), no command as
written and no repropack version; the run's end comes from the journal's ``end`` record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from repropack.run.records.files import dict_or_none, int_or_none, list_of, num, read_run_file, run_info, safe_rel
from repropack.run.records.entries import AttemptRecord, InstanceRecord, Output, StreamRef
from repropack.run.records.view import RunView

INSTANCE_JSON, CHECKSUMS = "instance.json", "checksums"


def load_v1(root: Path, path: Path, raw: dict[str, Any], *, only: set[str] | None = None) -> RunView:
    info = run_info(raw, path.name, 1)
    _add_end(root, info)
    instances: dict[str, InstanceRecord] = {}
    attempts: dict[str, list[AttemptRecord]] = {}
    if only is not None and len(only) <= 32:  # their folders' names follow from the ids
        from repropack.run.rundir import instance_dirname

        folders = sorted(instance_dirname(iid) for iid in only)
    else:
        try:
            folders = sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False) and e.name != "scratch")
        except FileNotFoundError:
            folders = []
    for name in folders:
        inst = _instance(path, name)
        if inst is None or (only is not None and inst.id not in only):
            continue
        instances[inst.id] = inst
        attempts[inst.id] = _attempts(root, path, name, inst)
    return RunView(root, path, info, instances, attempts)


def _instance(run_dir: Path, name: str) -> InstanceRecord | None:
    data = read_run_file(run_dir, f"{name}/{INSTANCE_JSON}")
    try:
        record = json.loads(data) if data else None
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    iid = record["id"]
    return InstanceRecord(
        id=iid, step=str(record.get("step") or iid.split("[", 1)[0]),
        values=record.get("wildcards") if isinstance(record.get("wildcards"), dict) else {},
        key=record.get("key"), deps=None, command=None, environment=record.get("runtime"),
        profile=record.get("profile"), backend=record.get("backend"),
        resources=dict_or_none(record.get("resources")) or {},
        inputs=[rel for p in list_of(record.get("inputs")) if (rel := safe_rel(p))],
        outputs=[rel for p in list_of(record.get("outputs")) if (rel := safe_rel(p))],
        dir=f"{run_dir.relative_to(run_dir.parents[2]).as_posix()}/{name}", raw=record)


def _attempts(root: Path, run_dir: Path, name: str, inst: InstanceRecord) -> list[AttemptRecord]:
    try:
        numbers = sorted(int(e.name[8:]) for e in os.scandir(run_dir / name)
                         if e.name.startswith("attempt-") and e.name[8:].isdigit() and e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    found = [_attempt(run_dir, name, inst.id, n) for n in numbers]
    sums = read_run_file(run_dir, f"{name}/{CHECKSUMS}")
    if sums is not None and found and found[-1].ok:
        found[-1].outputs = _outputs(root, sums)
    return found


def _attempt(run_dir: Path, name: str, iid: str, number: int) -> AttemptRecord:
    base = f"{name}/attempt-{number}"
    data = read_run_file(run_dir, f"{base}/metrics.json")
    try:
        metrics = json.loads(data) if data else {}
    except ValueError:
        metrics = {}
    metrics = metrics if isinstance(metrics, dict) else {}
    code = read_run_file(run_dir, f"{base}/exit_code")
    try:
        exit_status = int(code.strip()) if code is not None else int_or_none(metrics.get("exit_code"))
    except ValueError:
        exit_status = None
    failure = metrics.get("failure")
    if not metrics and exit_status is None:
        failure = "interrupted"  # the attempt folder exists, its result was never written
    signal = exit_status - 128 if exit_status is not None and exit_status > 128 and failure == "signal" else None
    return AttemptRecord(
        instance=iid, attempt=number, writer="local", backend=metrics.get("backend"),
        job_id=None if metrics.get("job") is None else str(metrics.get("job")),
        start=num(metrics.get("start")), end=num(metrics.get("end")), wall=num(metrics.get("wall")),
        cpu=num(metrics.get("cpu")), peak_rss=int_or_none(metrics.get("peak_rss")),
        peak_rss_source=metrics.get("peak_rss_source"), cpu_source=metrics.get("cpu_source"),
        exit_status=exit_status, signal=signal, failure=failure,
        requested=dict_or_none(metrics.get("requested")) or {},
        streams={s: StreamRef(f"{base}/{s}") for s in ("stdout", "stderr")},
        script_file=f"{base}/script.sh", where=f"{run_dir.name}/{base}", raw=metrics)


def _outputs(root: Path, data: bytes) -> list[Output]:
    """A format-1 ``checksums`` file: sha256sum lines, a folder's as ``tree:<hex>  <path>``."""
    found = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        escaped = line.startswith("\\")
        digest, sep, path = (line[1:] if escaped else line).partition("  ")
        if escaped:
            path = path.replace("\\n", "\n").replace("\\\\", "\\")
        kind = "tree" if digest.startswith("tree:") else "file"
        digest = digest[5:] if kind == "tree" else digest
        rel = safe_rel(path)
        if sep and rel and len(digest) == 64:
            found.append(Output(rel, digest.lower(), None, kind))
    return found


def _add_end(root: Path, info) -> None:
    """A format-1 run.json has no end: the journal's ``end`` record of the run gives it."""
    from repropack.run.journal import JOURNAL_NAME, read_records

    for record in read_records(Path(root) / ".repropack" / JOURNAL_NAME, kinds=("end",)):
        if record.get("run") == info.run_id:
            info.ended, info.status = num(record.get("time")), record.get("status")
