"""Build records: what was built, from what, and how long it took.

One JSON file per build under ``.repropack/builds/`` plus ``latest.json``,
read by the runners (which image or SIF to run steps in) and by provenance.
The record is versioned like every repropack format and read through
:func:`read_record`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from repropack.errors import FormatVersionError

RECORD_VERSION = 1
BUILDS_DIR = Path(".repropack") / "builds"
LATEST = "latest.json"


def write_record(project_root: Path, record: dict[str, Any]) -> Path:
    """Write the record (atomically) and point ``latest.json`` at it; returns its path."""
    directory = Path(project_root) / BUILDS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    record = {"version": RECORD_VERSION, **record}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    short = record["image"]["id"].split(":", 1)[-1][:12]
    path = directory / f"{stamp}-{short}.json"
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    for target in (path, directory / LATEST):
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    return path


def read_record(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    version = data.get("version", 0)
    if version > RECORD_VERSION:
        raise FormatVersionError("build record", path, version, RECORD_VERSION)
    return data


def latest_record(project_root: Path) -> dict[str, Any] | None:
    """The last successful build of the project, or None when there was none."""
    path = Path(project_root) / BUILDS_DIR / LATEST
    return read_record(path) if path.is_file() else None
