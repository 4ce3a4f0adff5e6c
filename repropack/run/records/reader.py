"""The one reader of run records: format 2 and, through the same path, format-1 run directories.

Every command that reads what a run left (status, logs, report, verify, clean, provenance, the
archive) calls :func:`open_run` (one run) or :func:`run_ids` / :func:`evidence_runs` (the
project's runs) and gets a :class:`~repropack.run.records.view.RunView` (its docstring lists
what a view answers). The upgrade path:

- ``run.json`` without ``format`` (or ``format: 1``): a format-1 run directory (one folder per
  instance, see :mod:`repropack.run.rundir`), read by :mod:`repropack.run.records.v1`;
- ``format: 2``: ``run.json``, ``instances.jsonl``, ``results/*.jsonl``, ``streams/``,
  ``failed/``, ``SHA256SUMS`` (:mod:`repropack.run.records.format`);
- a newer format, in ``run.json`` or in any line of a ``.jsonl``: :class:`FormatVersionError`
  naming the file and the version (exit code 1, ``errors.EXIT_CODES``).

Bad input: a torn last line of a ``.jsonl`` (no newline) or a line that does not parse is
skipped, so that attempt counts as not made and reruns. Paths in records are trusted only when
project-relative and without ``..`` (records of a project copied from elsewhere are read; an
absolute path or an escaping one is dropped and the attempt holding it is not a result). Files
are opened without following links (:func:`repropack.run.statefiles.open_state`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repropack.errors import FormatVersionError
from repropack.run.records import format as fmt
from repropack.run.records.files import (dict_or_none, int_or_none, list_of, num, read_run_file, read_stream,
                                         run_info, safe_rel, str_or_none)
from repropack.run.records.v1 import load_v1
from repropack.run.records.entries import AttemptRecord, InstanceRecord, Output, StreamRef
from repropack.run.records.view import RunView

RUNS = Path(".repropack") / "runs"
_FEW = 32  # up to this many ids, lines are searched for them before parsing; more, every line is parsed
UNTRUSTED = "untrusted-path"  # the failure given to an attempt whose record names a path outside the project


def runs_root(root: Path) -> Path:
    return Path(root) / RUNS


def run_ids(root: Path) -> list[str]:
    """The project's run ids, oldest first (ids start with their UTC start time)."""
    try:
        entries = list(os.scandir(runs_root(root)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and e.name != "latest")
    stamps = [name[:16] for name in names]
    if len(set(stamps)) == len(stamps):
        return names
    # runs started within one second: their random suffixes say nothing of their order, run.json does
    return sorted(names, key=lambda name: (name[:16], _started(runs_root(root) / name), name))


def _started(run_dir: Path) -> float:
    try:
        started = run_format(run_dir)[1]
    except FormatVersionError:
        return 0.0
    value = started.get("started", started.get("start"))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def run_format(run_dir: Path) -> tuple[int, dict[str, Any]]:
    """(format, run.json's data); a run folder without a readable run.json is format 1 with no data."""
    data = read_run_file(run_dir, fmt.RUN_JSON)
    try:
        raw = json.loads(data) if data is not None else {}
    except ValueError:
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    return fmt.check_format(raw, Path(run_dir) / fmt.RUN_JSON, "run records"), raw


def open_run(root: Path, run_id: str, *, only: set[str] | None = None) -> RunView:
    """The view of run ``run_id`` (any format this repropack reads). ``only``: read these instances only.

    Raises FileNotFoundError when there is no such run folder, FormatVersionError for a newer format.
    """
    root = Path(root)
    if safe_rel(run_id) != run_id or "/" in run_id:
        raise FileNotFoundError(f"not a run id: {run_id!r}")
    path = runs_root(root) / run_id
    if not path.is_dir() or path.is_symlink():
        raise FileNotFoundError(str(path))
    version, raw = run_format(path)
    if version == 1:
        return load_v1(root, path, raw, only=only)
    return _load_v2(root, path, raw, only)


def jsonl(run_dir: Path, rel: str, what: str, only: set[str] | None = None,
          field: str = "id") -> Iterator[dict[str, Any]]:
    """The records of a .jsonl of a run folder (torn and unparsable lines skipped, a newer format raised).
    With ``only``, lines that do not mention one of those ids are not parsed."""
    data = read_run_file(run_dir, rel)
    if not data:
        return
    shown = Path(run_dir) / rel
    if only is None or len(only) > _FEW:
        yield from (r for r in fmt.iter_lines(data, shown, what) if only is None or r.get(field) in only)
        return
    needles = [json.dumps(i, ensure_ascii=False).encode() for i in only]
    end = data.rfind(b"\n")
    for raw in data[: end + 1].splitlines():
        if not any(n in raw for n in needles):  # a line not naming them is never parsed (logs of one instance)
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get(field) in only:
            fmt.check_format(record, shown, what)
            yield record


def _load_v2(root: Path, path: Path, raw: dict[str, Any], only: set[str] | None) -> RunView:
    info = run_info(raw, path.name, 2)
    instances: dict[str, InstanceRecord] = {}
    for record in jsonl(path, fmt.INSTANCES, "instance record", only):
        inst = instance_from_v2(record)
        if inst is not None:
            instances[inst.id] = inst
    attempts: dict[str, list[AttemptRecord]] = {}
    for writer in _writers(path):
        rel = f"{fmt.RESULTS}/{writer}"
        for number, record in enumerate(jsonl(path, rel, "results record", only, field="instance"), start=1):
            attempt = attempt_from_v2(record, writer[: -len(".jsonl")], f"{rel}:{number}")
            if attempt is not None:
                attempts.setdefault(attempt.instance, []).append(attempt)
    for found in attempts.values():
        found.sort(key=lambda a: (a.attempt, a.end or 0))
    sums = read_run_file(path, fmt.SUMS)
    checksums = _sums(sums) if sums is not None else None
    return RunView(root, path, info, instances, attempts, checksums, renderer=render_script)


def _writers(path: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(path / fmt.RESULTS)
                      if e.name.endswith(".jsonl") and e.is_file(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _sums(data: bytes) -> dict[str, str]:
    from repropack.run.checksums import parse_checksums
    from repropack.errors import VerifyError

    try:
        entries = parse_checksums(data.decode("utf-8", "surrogateescape"), source=fmt.SUMS)
    except VerifyError:
        return {}
    return {rel: digest for path, digest in entries.items() if (rel := safe_rel(path))}


def instance_from_v2(record: dict[str, Any]) -> InstanceRecord | None:
    iid = record.get("id")
    if not isinstance(iid, str):
        return None
    outputs = [rel for p in list_of(record.get("outputs")) if (rel := safe_rel(p))]
    parts = record.get("key_parts") if isinstance(record.get("key_parts"), dict) else {}
    inputs = [rel for e in list_of(parts.get("inputs")) if isinstance(e, dict) and (rel := safe_rel(e.get("path")))]
    deps = record.get("deps")
    return InstanceRecord(
        id=iid, step=str(record.get("step") or iid.split("[", 1)[0]),
        values=record.get("values") if isinstance(record.get("values"), dict) else {},
        key=record.get("key"), key_scheme=record.get("key_scheme"), key_parts=parts,
        deps=[d for d in deps if isinstance(d, str)] if isinstance(deps, list) else [],
        command=record.get("command") if isinstance(record.get("command"), str) else None,
        environment=record.get("environment"), image=record.get("image"), profile=record.get("profile"),
        backend=record.get("backend"), resources=dict_or_none(record.get("resources")) or {},
        inputs=inputs, outputs=outputs,
        cached_from=record.get("cached_from") if isinstance(record.get("cached_from"), str) else None,
        raw=record)


def attempt_from_v2(record: dict[str, Any], writer: str, where: str) -> AttemptRecord | None:
    iid, number = record.get("instance"), record.get("attempt")
    if not isinstance(iid, str) or type(number) is not int:
        return None
    attempt = AttemptRecord(
        instance=iid, attempt=number, writer=str(record.get("writer") or writer), backend=str_or_none(record.get("backend")),
        job_id=str_or_none(record.get("job_id")), start=num(record.get("start")), end=num(record.get("end")),
        wall=num(record.get("wall")), cpu=num(record.get("cpu")), peak_rss=int_or_none(record.get("peak_rss")),
        peak_rss_source=str_or_none(record.get("peak_rss_source")), cpu_source=str_or_none(record.get("cpu_source")),
        exit_status=int_or_none(record.get("exit_status")), signal=int_or_none(record.get("signal")),
        failure=str_or_none(record.get("failure")), message=str(record.get("message") or ""),
        requested=dict_or_none(record.get("requested")) or {},
        staging=dict_or_none(record.get("staging")) or {}, where=where, raw=record)
    bad: list[str] = []
    for entry in list_of(record.get("outputs")):
        rel = safe_rel(entry.get("path")) if isinstance(entry, dict) else None
        if rel is None:
            bad.append(str(entry.get("path") if isinstance(entry, dict) else entry))
            continue
        attempt.outputs.append(Output(rel, str_or_none(entry.get("sha256")), int_or_none(entry.get("size")),
                                      str(entry.get("type") or "file")))
    for name, ref in (dict_or_none(record.get("streams")) or {}).items():
        file = safe_rel(ref.get("file")) if isinstance(ref, dict) else None
        if name in fmt.STREAM_NAMES and file is not None and file.split("/", 1)[0] in (fmt.STREAMS, fmt.FAILED):
            attempt.streams[name] = StreamRef(file, int_or_none(ref.get("offset")) or 0, int_or_none(ref.get("length")))
    kept = safe_rel(record.get("failed_dir"))
    if kept is not None and kept.startswith(fmt.FAILED + "/"):
        attempt.script_file = f"{kept}/{fmt.SCRIPT}"
        for name in fmt.STREAM_NAMES:
            attempt.streams.setdefault(name, StreamRef(f"{kept}/{name}"))
    if bad:
        attempt.failure = UNTRUSTED
        attempt.message = f"{where}: the record names output(s) outside the project ({', '.join(bad[:3])}): not used"
    return attempt


def render_script(instance: InstanceRecord, attempt: AttemptRecord | None) -> str | None:
    """The exact script of a format-2 attempt, from its instance's command and the attempt's staging."""
    if instance.command is None:
        return None
    number = attempt.attempt if attempt is not None else 1
    staging = _staging(attempt.staging) if attempt is not None else {}
    if staging is None:
        return None  # a damaged staging record: no script is better than a wrong one
    return fmt.script_text(instance.id, number, fmt.executed_command(instance.command, staging))




def _staging(staging: dict[str, Any]) -> dict[str, Any] | None:
    """The staging record when it has the form format.staging_record writes, else None."""
    if "command" in staging:
        return staging if isinstance(staging["command"], str) else None
    words = staging.get("words", {})
    if not isinstance(words, dict) or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in words.items()):
        return None
    return staging


__all__ = ["FormatVersionError", "open_run", "run_ids", "read_stream", "read_run_file", "safe_rel", "render_script"]
