"""Instance lookup: which journaled instances a selector names, and where their records are.

A selector is a full id (``count[sample=a]``), a step name (``count``), or ``STEP:VALUE`` where
VALUE is one of the instance's wildcard values (``count:a``). ``logs``, provenance and the
archive use the same rules, so a name that works on one command works on all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from repropack.run.journal import JOURNAL_NAME, read_records

JOURNAL = Path(".repropack") / JOURNAL_NAME


def journaled_dirs(root: Path) -> dict[str, Path]:
    """Instance id -> its latest run directory (format 1) per the journal's records."""
    dirs: dict[str, Path] = {}
    for record in read_records(Path(root) / JOURNAL, kinds=("done", "failed", "start")):
        if record.get("t") in ("done", "failed") and record.get("dir"):
            dirs[record["id"]] = Path(root) / record["dir"]
        elif record.get("t") == "start":
            from repropack.run.rundir import instance_dir

            dirs[record["id"]] = instance_dir(Path(root), record["run"], record["id"]).path
    return dirs


def values_of(instance_id: str) -> list[str]:
    """The wildcard values in an instance id (``count[sample=a,n=2]`` -> ``["a", "2"]``)."""
    _, _, rest = instance_id.partition("[")
    return [kv.partition("=")[2] for kv in rest.rstrip("]").split(",")] if rest else []


def select(ids: Iterable[str], selector: str) -> list[str]:
    """The ids among ``ids`` that ``selector`` names (an exact id wins over any pattern)."""
    ids = list(ids)
    if selector in ids:
        return [selector]
    step, _, value = selector.partition(":")
    return [iid for iid in ids if iid.partition("[")[0] == step and (not value or value in values_of(iid))]


def find_instances(root: Path, selector: str) -> dict[str, Path]:
    """Instance id -> its run directory, for every journaled instance matching the selector."""
    dirs = journaled_dirs(root)
    return {iid: dirs[iid] for iid in select(dirs, selector)}
