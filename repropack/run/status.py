"""What the last run did to each instance, read from the journal: the answer ``status`` gives.

States (``STATES``): ``done`` (run and finished by the last run), ``cached`` (the last run found
it up to date and skipped it), ``failed``, ``not-run`` (the last run selected it but never
started it: an upstream failed, or the run was stopped), ``running`` (the last run is still
going), ``interrupted`` (started by a last run that ended without finishing it), ``unknown``
(the last run never reached it, e.g. it ran other steps or died first; an earlier run finished
it, ``last_done`` says which), ``never-run`` (no run has finished it) and ``changed`` (a run
finished it, but the files on disk no longer have the digests its results record names: it is
not done, ``message`` says which file; the next run reruns it).

Every finished instance's entry names the run its records are in (``records``), read through
:mod:`repropack.run.records.reader` (format 1 or 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

STATES = ("done", "cached", "failed", "not-run", "running", "interrupted", "unknown", "never-run", "changed")


def last_run_status(root: Path, instances: Mapping[str, str] | None = None) -> tuple[dict | None, dict[str, dict]]:
    """(the last run: its record plus ``ended`` and ``status``; instance id -> its entry).

    ``instances`` (id -> step) are the manifest's instances now; every one of them gets an
    entry, as does every instance the last run touched. None: the journal's instances only.
    """
    from repropack.run.journal import load_state
    from repropack.run.lock import is_locked
    from repropack.run.runner import JOURNAL

    state = load_state(root / JOURNAL)
    if state.last_run is None:
        return None, _earlier(state.done, instances or {})
    active = is_locked(root)
    end = next((r for r in state.last_run_records if r.get("t") == "end"), None)
    run = dict(state.last_run)
    run["ended"] = end is not None
    run["status"] = end.get("status") if end else ("running" if active else "did-not-end")
    table = _earlier(state.done, instances if instances is not None else _steps_of(state.done))
    running = end is None and active
    for record in state.last_run_records:
        _apply(table, record, running)
    check_results(root, state.done, table)
    return run, table


def check_results(root: Path, done: Mapping[str, dict], table: dict[str, dict]) -> None:
    """Each finished instance: where its records are, and whether the files still match them."""
    from repropack.run.keys import FileHashCache
    from repropack.run.records.reader import open_run
    from repropack.run.verify import stale_outputs

    by_run: dict[str, set[str]] = {}
    for iid, entry in table.items():
        if entry.get("state") in ("done", "cached", "unknown") and iid in done:
            by_run.setdefault(done[iid].get("run"), set()).add(iid)
    hashes = FileHashCache(root)
    for run_id, ids in by_run.items():
        try:
            view = open_run(root, run_id, only=ids)
        except FileNotFoundError:
            for iid in ids:
                table[iid]["records"] = None  # removed (by an older clean): status still answers
            continue
        for iid in sorted(ids):
            table[iid]["records"] = run_id
            problems = stale_outputs(root, view.outputs(iid), hashes)
            if problems:
                table[iid].update(state="changed", message="; ".join(problems) + ": not done")


def _steps_of(done: Mapping[str, dict]) -> dict[str, str]:
    return {iid: record.get("step") or iid.split("[", 1)[0] for iid, record in done.items()}


def _earlier(done: Mapping[str, dict], instances: Mapping[str, str]) -> dict[str, dict]:
    """Before looking at the last run: each instance is unknown (finished earlier) or never-run."""
    table = {}
    for iid, step in instances.items():
        record = done.get(iid)
        if record is None:
            table[iid] = {"step": step, "state": "never-run"}
        else:
            table[iid] = {"step": step, "state": "unknown", "last_done": record.get("run")}
    return table


def _apply(table: dict[str, dict], record: dict[str, Any], running: bool) -> None:
    kind = record.get("t")
    if kind in ("skipped", "not-run"):
        for iid in _ids(record):
            entry = _entry(table, iid, None)
            entry["state"] = "cached" if kind == "skipped" else "not-run"
        return
    if "id" not in record:
        return
    entry = _entry(table, record["id"], record.get("step"))
    if kind == "done":
        entry.update(state="done", attempts=record.get("attempts"))
    elif kind == "failed":
        entry.update(state="failed", failure=record.get("failure"), message=record.get("message"),
                     attempts=record.get("attempts"), dir=record.get("dir"), run=record.get("run"))
    elif kind in ("submit", "start", "attempt") and entry.get("state") not in ("done", "failed"):
        entry.update(state="running" if running else "interrupted", attempts=record.get("attempt"))
    else:
        entry.setdefault("state", "unknown")  # a record kind this reader does not know


def _entry(table: dict[str, dict], iid: str, step: str | None) -> dict:
    entry = table.get(iid)
    if entry is None:
        entry = table[iid] = {"step": step or iid.split("[", 1)[0]}
    entry.pop("last_done", None)  # the last run touched it: its own answer replaces the earlier one
    return entry


def _ids(record: Mapping[str, Any]) -> Iterable[str]:
    ids = record.get("ids")
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []
