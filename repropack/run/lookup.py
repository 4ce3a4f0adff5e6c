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


def journaled_runs(root: Path) -> dict[str, str]:
    """Instance id -> the run that last started, finished or failed it, per the journal.

    Only run ids are taken from the journal (never its ``dir`` paths, which a copied project
    may carry from elsewhere): the records are then read from that run's folder.
    """
    runs: dict[str, str] = {}
    for record in read_records(Path(root) / JOURNAL, kinds=("done", "failed", "start")):
        runs[record["id"]] = record["run"]
    return runs


def evidence_runs(root: Path) -> dict[str, str]:
    """Instance id -> the run whose records the journal's up-to-date result of it rests on
    (the run of its latest ``done``): what ``clean`` keeps and ``status`` checks."""
    from repropack.run.journal import load_state

    return {iid: record["run"] for iid, record in load_state(Path(root) / JOURNAL, last_run=False).done.items()}


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


def find_instances(root: Path, selector: str) -> dict[str, str]:
    """Instance id -> the run holding its last records, for every journaled instance matching the selector."""
    runs = journaled_runs(root)
    return {iid: runs[iid] for iid in select(runs, selector)}


def open_instance(root: Path, instance_id: str, run_id: str | None = None):
    """(the RunView of ``run_id`` (default: the journal's last run of the instance) read for this
    instance only, its InstanceRecord or None)."""
    from repropack.run.records.reader import open_run

    run_id = run_id or journaled_runs(root).get(instance_id)
    if run_id is None:
        raise FileNotFoundError(instance_id)
    view = open_run(root, run_id, only={instance_id})
    return view, view.instances.get(instance_id)
