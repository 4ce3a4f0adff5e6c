"""Format 2 of the run records: names, version, record builders, stream frames, staging.

Writers (the local runner, a SLURM or Batch job's results) and readers share this module, so it
imports nothing heavy and nothing of the runner. Records are plain dicts built here with a fixed
set of keys (a dataclass per record would cost per instance at 100,000 instances); the JSON Schema
``docs/schema/records-v2.schema.json`` describes every key and is what the tests check written
files against.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from repropack.errors import FormatVersionError

FORMAT = 2
RUN_JSON = "run.json"
INSTANCES = "instances.jsonl"
RESULTS = "results"
STREAMS = "streams"
FAILED = "failed"
SUMS = "SHA256SUMS"
LOCAL_WRITER = "local"
NAMES = (RUN_JSON, INSTANCES, RESULTS, STREAMS, FAILED, SUMS)
# what a failed attempt's folder keeps (the names of format 1's attempt folders)
SCRIPT, STDOUT, STDERR, METRICS = "script.sh", "stdout", "stderr", "metrics.json"
STREAM_NAMES = (STDOUT, STDERR)
KEY_SCHEME = "k2"
_WRITER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def results_file(writer: str) -> str:
    """``results/<writer>.jsonl`` (relative to the run folder)."""
    return f"{RESULTS}/{_writer(writer)}.jsonl"


def streams_file(writer: str) -> str:
    """``streams/<writer>.log`` (relative to the run folder)."""
    return f"{STREAMS}/{_writer(writer)}.log"


def failed_dir(instance_dirname: str, attempt: int) -> str:
    """``failed/<inst-dir>/attempt-<n>`` (relative to the run folder)."""
    return f"{FAILED}/{instance_dirname}/attempt-{attempt}"


def _writer(name: str) -> str:
    if not _WRITER.fullmatch(name):
        raise ValueError(f"not a results writer name: {name!r} (letters, digits, '.', '_', '-')")
    return name


def check_format(record: Mapping[str, Any], path: Path | str, what: str = "run record") -> int:
    """The record's format version; a newer one than this repropack knows is an error naming the file."""
    version = record.get("format", 1)
    if type(version) is not int or version < 1:
        raise FormatVersionError(what, path, -1 if type(version) is not int else version, FORMAT)
    if version > FORMAT:
        raise FormatVersionError(what, path, version, FORMAT)
    return version


def dumps_line(record: Mapping[str, Any]) -> bytes:
    """One JSON Lines record: compact, UTF-8, newline-terminated (one ``write`` appends it whole)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def iter_lines(data: bytes, path: Path | str, what: str) -> Iterator[dict[str, Any]]:
    """The records of a JSON Lines file's bytes: a torn last line (no newline) and lines that do not
    parse are skipped (that attempt reruns); a record of a newer format raises."""
    end = data.rfind(b"\n")
    for raw in data[: end + 1].splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            check_format(record, path, what)
            yield record


# -- records ---------------------------------------------------------------------------------
def run_record(*, run_id: str, repropack_version: str, argv: Sequence[str], host: str, user: str | None,
               profile: str | None, started: float, manifest: Mapping[str, Any] | None,
               lock: Mapping[str, Any] | None, environments: Mapping[str, Mapping[str, Any]],
               pid: int, instances: int, masks: Any = None, ended: float | None = None,
               status: str = "running") -> dict[str, Any]:
    """``run.json``. Written when the run starts (status ``running``) and replaced when it ends.
    ``masks`` are the salted digests of this run's secret values (``logs`` masks them later)."""
    return {"format": FORMAT, "run_id": run_id, "repropack_version": repropack_version, "argv": list(argv),
            "host": host, "user": user, "profile": profile, "started": started, "ended": ended, "status": status,
            "manifest": dict(manifest) if manifest is not None else None,
            "lock": dict(lock) if lock is not None else None,
            "environments": {name: dict(env) for name, env in environments.items()},
            "pid": pid, "instances": instances, "masks": masks}


def environment_identity(*, runtime: str, lock_sha256: str | None = None, image_id: str | None = None,
                         image_digest: str | None = None, sif_digest: str | None = None) -> dict[str, Any]:
    """One entry of run.json's ``environments``: what the steps of that environment ran in."""
    return {"runtime": runtime, "lock_sha256": lock_sha256, "image_id": image_id, "image_digest": image_digest,
            "sif_digest": sif_digest}


def instance_record(*, id: str, step: str, values: Mapping[str, Any], key: str | None,
                    key_parts: Mapping[str, Any] | None, inputs: Sequence[Mapping[str, Any]],
                    deps: Sequence[str], command: str, environment: str | None, image: str | None,
                    profile: str, runtime: str, backend: str, resources: Mapping[str, Any],
                    outputs: Sequence[str], retries: int = 0, cached_from: str | None = None,
                    inputs_list: str | None = None) -> dict[str, Any]:
    """A line of ``instances.jsonl``. ``command`` is the step's command with the declared paths
    (never staging paths); ``inputs`` are ``input_entry`` dicts (the key's input digests);
    ``cached_from`` names the run whose results an up-to-date instance rests on."""
    parts = dict(key_parts) if key_parts is not None else {}
    parts["inputs"] = list(inputs)
    return {"format": FORMAT, "id": id, "step": step, "values": dict(values), "key": key,
            "key_scheme": KEY_SCHEME, "key_parts": parts, "deps": list(deps), "command": command,
            "inputs_list": inputs_list, "environment": environment, "image": image, "profile": profile,
            "runtime": runtime, "backend": backend, "resources": dict(resources), "retries": retries,
            "outputs": list(outputs), "cached_from": cached_from}


def input_entry(path: str, digest: str | None, size: int | None = None) -> dict[str, Any]:
    return {"path": path, "sha256": digest, "size": size}


def result_record(*, instance: str, attempt: int, writer: str, backend: str, job_id: str | None,
                  metrics: Mapping[str, Any], exit_status: int | None, signal: int | None,
                  failure: str | None, message: str | None, outputs: Sequence[Mapping[str, Any]],
                  streams: Mapping[str, Mapping[str, Any]], staging: Mapping[str, Any],
                  requested: Mapping[str, Any], failed_dir: str | None = None) -> dict[str, Any]:
    """A line of ``results/<writer>.jsonl``: one attempt. ``metrics`` carries start, end, wall, cpu,
    peak_rss and their sources as the backend measured them (missing ones are null)."""
    get = metrics.get
    return {"format": FORMAT, "instance": instance, "attempt": attempt, "writer": writer, "backend": backend,
            "job_id": job_id, "start": get("start"), "end": get("end"), "wall": get("wall"), "cpu": get("cpu"),
            "peak_rss": get("peak_rss"), "peak_rss_source": get("peak_rss_source"),
            "cpu_source": get("cpu_source"), "exit_status": exit_status, "signal": signal, "failure": failure,
            "message": message, "requested": dict(requested), "outputs": list(outputs),
            "streams": dict(streams), "staging": dict(staging), "failed_dir": failed_dir}


def output_entry(path: str, digest: str, size: int | None) -> dict[str, Any]:
    """An output of a results record; a folder's digest (``tree:<hex>``) gives type ``tree``."""
    if digest.startswith("tree:"):
        return {"path": path, "sha256": digest[5:], "size": size, "type": "tree"}
    return {"path": path, "sha256": digest, "size": size, "type": "file"}


def output_digest(entry: Mapping[str, Any]) -> str:
    """The digest as the journal and the key records write it (``tree:<hex>`` for a folder)."""
    return ("tree:" if entry.get("type") == "tree" else "") + str(entry.get("sha256"))


# -- streams ---------------------------------------------------------------------------------
FRAME = b"#repropack-stream "


def frame(instance: str, attempt: int, stream: str, data: bytes) -> tuple[bytes, int]:
    """The bytes that append one stream to a streams log, and where its data starts in them.

    A frame is a header line (``#repropack-stream {"instance","attempt","stream","length"}``), the
    data as written, and a newline: the log reads as text, a results record points at the data by
    offset and length, and the log alone can be walked (:func:`read_frames`) to recover it.
    """
    head = FRAME + json.dumps({"instance": instance, "attempt": attempt, "stream": stream, "length": len(data)},
                              separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
    return head + data + b"\n", len(head)


def stream_ref(file: str, offset: int, length: int) -> dict[str, Any]:
    """Where a stream's bytes are: ``file`` relative to the run folder."""
    return {"file": file, "offset": offset, "length": length}


def read_frames(data: bytes) -> Iterator[tuple[dict[str, Any], int, int]]:
    """(header, offset, length) of each whole frame of a streams log; a torn tail ends the walk."""
    pos = 0
    while data.startswith(FRAME, pos):
        eol = data.find(b"\n", pos)
        if eol < 0:
            return
        try:
            head = json.loads(data[pos + len(FRAME):eol])
            length = int(head["length"])
        except (ValueError, KeyError, TypeError):
            return
        start = eol + 1
        if start + length + 1 > len(data):
            return
        yield head, start, length
        pos = start + length + 1


# -- the exact script ------------------------------------------------------------------------
def script_text(instance_id: str, attempt: int, command: str) -> str:
    """The script an attempt runs (``bash -euo pipefail script.sh``)."""
    # json.dumps keeps an id holding a newline or quote on one inert comment line
    label = json.dumps(instance_id, ensure_ascii=True)
    return f"#!/usr/bin/env bash\n# repropack step {label} attempt {attempt}\nset -euo pipefail\n{command}\n"


def staging_record(declared: str, executed: str, words: Mapping[str, str]) -> dict[str, Any]:
    """What turns the declared command back into the one that ran: the shell words of the declared
    output paths and of the staging paths that replaced them, or the whole command where that
    replacement would not give it back exactly (a command that uses the attempt number, say)."""
    if executed == declared:
        return {}
    record: dict[str, Any] = {"words": dict(words)}
    if executed_command(declared, record) != executed:
        return {"command": executed}
    return record


def executed_command(declared: str, staging: Mapping[str, Any]) -> str:
    """The command that ran, from the declared command and a :func:`staging_record`."""
    if "command" in staging:
        return str(staging["command"])
    words = staging.get("words") or {}
    if not words:
        return declared
    if len(words) == 1:  # the usual case; the same as the pattern below, without compiling one per instance
        (old, new), = words.items()
        return declared.replace(old, new)
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    return pattern.sub(lambda m: words[m.group(0)], declared)
