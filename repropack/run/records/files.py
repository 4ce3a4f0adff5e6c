"""Reading the files of a run folder safely: paths checked, no link followed, fields typed.

Shared by the reader's format-1 and format-2 paths (:mod:`.reader`, :mod:`.v1`) and the view.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from repropack.paths import normalize, path_problem
from repropack.run.records.entries import RunInfo, StreamRef
from repropack.run.statefiles import open_state


# A path already in normal form with no '.' or '..' component: the common case, checked in one match.
_PLAIN = re.compile(r"(?!\.\.?(?:/|$))[\w.+=@,%-]+(?:/(?!\.\.?(?:/|$))[\w.+=@,%-]+)*")


def safe_rel(path: Any) -> str | None:
    """``path`` normalised when it is a project-relative path that stays inside, else None."""
    if type(path) is str and _PLAIN.fullmatch(path) and not path.startswith("~"):
        return path
    if not isinstance(path, str) or path_problem(path) is not None:
        return None
    rel = normalize(path).rstrip("/")
    return rel or None


def read_run_file(run_dir: Path, rel: str, *, start: int = 0, length: int | None = None) -> bytes | None:
    """Bytes of a file of a run folder (``rel`` is checked; no link followed); None when it is not there."""
    rel = safe_rel(rel)
    if rel is None:
        return None
    try:
        fd = open_state(Path(run_dir) / rel, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if start:
            handle.seek(start)
        return handle.read() if length is None else handle.read(length)


def read_stream(run_dir: Path, ref: StreamRef, *, max_bytes: int | None = None) -> bytes:
    start, length = ref.offset, ref.length
    if max_bytes is not None:
        if length is None:
            size = _size(Path(run_dir) / ref.file)
            start = max(start, size - max_bytes)
        elif length > max_bytes:
            start, length = start + length - max_bytes, max_bytes
    return read_run_file(run_dir, ref.file, start=start, length=length) or b""


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def run_info(raw: dict[str, Any], run_id: str, version: int) -> RunInfo:
    masks = raw.get("masks")
    return RunInfo(
        run_id=str(raw.get("run_id") or raw.get("run") or run_id), format=version,
        repropack_version=raw.get("repropack_version"), argv=[str(a) for a in raw.get("argv") or []],
        host=raw.get("host"), user=raw.get("user"), profile=raw.get("profile"),
        started=num(raw.get("started", raw.get("start"))), ended=num(raw.get("ended")), status=raw.get("status"),
        manifest=dict_or_none(raw.get("manifest")), lock=dict_or_none(raw.get("lock")),
        environments=raw.get("environments") if isinstance(raw.get("environments"), dict) else {},
        masks=masks if isinstance(masks, (dict, list)) else None, raw=raw)


def num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None




def list_of(value: Any) -> list[Any]:
    """``value`` when a record holds a list there, else [] (a damaged record costs a field, never a crash)."""
    return value if isinstance(value, list) else []
