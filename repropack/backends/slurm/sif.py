"""Is a job's SIF there, and built from the project's current lock? Asked before its jobs are submitted.

The SIF's labels (``io.repropack.lock.sha256``, written by ``repropack build --apptainer``) are read
with spython's ``Client.inspect``, the one place spython serves: it runs ``singularity inspect
--json`` and unifies the label output across Apptainer/Singularity versions. spython calls
``sys.exit`` on some errors and needs an executable named ``singularity``; both are guarded, and the
``apptainer inspect --json`` CLI answers when spython cannot.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

LOCK_LABEL = "io.repropack.lock.sha256"


def labels(sif: str) -> dict[str, Any]:
    try:
        from spython.main import Client

        got = Client.inspect(sif, quiet=True)
        if isinstance(got, dict):
            found = got.get("attributes", {}).get("labels") or got.get("labels")
            if isinstance(found, dict):
                return found
    except (SystemExit, Exception):  # spython exits or raises where it cannot run: ask the CLI instead
        pass
    try:
        done = subprocess.run(["apptainer", "inspect", "--json", "-l", sif], capture_output=True, text=True,
                              timeout=60)
        data = json.loads(done.stdout) if done.returncode == 0 else {}
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    return (data.get("data") or {}).get("attributes", {}).get("labels") or {}


@functools.lru_cache(maxsize=16)
def _problem(sif: str, lock: str, lock_mtime: int, sif_mtime: int) -> str | None:
    del lock_mtime, sif_mtime  # part of the cache key only: a rebuilt SIF or a new lock is asked again
    built_from = labels(sif).get(LOCK_LABEL)
    if not built_from or not os.path.exists(lock):
        return None  # not a repropack build (a profile's own `sif`), or nothing locked: nothing to compare
    current = "sha256:" + hashlib.sha256(Path(lock).read_bytes()).hexdigest()
    if built_from != current:
        return (f"the SIF {sif} is stale: built from a lock with {built_from}, repropack.lock is now {current} "
                "(run `repropack build --apptainer`)")
    return None


def sif_problem(sif: str | None, project: Path) -> str | None:
    """Why the jobs cannot run in ``sif``: missing, or built from another lock; None when it is fine."""
    if not sif:
        return "no SIF to run (run `repropack build --apptainer`, or set the profile's `sif`)"
    try:
        sif_mtime = os.stat(sif).st_mtime_ns
    except OSError:
        return f"the SIF {sif} does not exist (run `repropack build --apptainer`)"
    lock = project / "repropack.lock"
    try:
        lock_mtime = os.stat(lock).st_mtime_ns
    except OSError:
        lock_mtime = 0
    return _problem(sif, str(lock), lock_mtime, sif_mtime)
