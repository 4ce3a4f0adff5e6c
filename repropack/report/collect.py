"""Read the journal and run directories of a project into a :class:`~repropack.report.model.Report`.

The journal gives every attempt's times, metrics (wall, CPU, peak memory),
requested resources and failure class; the run's records, read through the one
reader (:mod:`repropack.run.records.reader`, formats 1 and 2), give the rest:
dependencies (format 2: ``instances.jsonl``'s ``deps``; format 1: each instance
folder's inputs matched with the outputs journaled ``done``), the instances the
run planned and found up to date (``cached_from``), and what a failure looks like
(the script that ran, the tail of its logs). Today's manifest is never expanded
for them: the report describes the run as it was.
Everything shown from a script, log or argv passes through the redactor first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repropack.errors import UsageError
from repropack.report.critical import critical_path
from repropack.report.model import (
    CACHED,
    DONE,
    FAILED,
    INTERRUPTED,
    NOT_RUN,
    RUNNING,
    Attempt,
    Instance,
    Report,
    summarize_steps,
)
from repropack.manifest import load_manifest_or_none
from repropack.redact import Redactor, project_redactor

LOG_LINES = 30
LOG_BYTES = 16 << 10


def collect(root: Path, *, redactor: Redactor | None = None, log_lines: int = LOG_LINES) -> Report:
    """The report of the project's last run. Raises UsageError when there is none."""
    from repropack.run.journal import read_records
    from repropack.run.lock import is_locked
    from repropack.run.runner import JOURNAL

    root = Path(root).resolve()
    run, records, _ = _last_run(read_records(root / JOURNAL))
    if run is None:
        raise UsageError(f"no run recorded in {root} yet (run `repropack run` first)")
    running = is_locked(root)
    end_record = next((r for r in reversed(records) if r.get("t") == "end"), None)
    manifest = load_manifest_or_none(root)
    redactor = redactor or project_redactor(manifest, digests=run.get("masks"))
    report = Report(
        project=manifest.project.name if manifest is not None else root.name,
        run_id=run["run"],
        status=end_record.get("status", "failed") if end_record else ("running" if running else "crashed"),
        start=run.get("start"),
        end=end_record.get("time") if end_record else None,
        host=str(run.get("host") or ""),
        profile=run.get("profile"),
        argv=redactor.argv(run.get("argv") or []),
        total=int(run.get("instances") or 0),
        generated=time.time(),
    )
    report.instances = _fold(records, running)
    _add_untouched(report.instances, records)
    view = _view(root, run["run"])
    _add_deps(root, report, view)
    causes = None
    for inst in report.instances.values():
        if inst.state == FAILED and view is not None:
            if causes is None:
                from repropack.observe.causes import table_for

                causes = table_for(manifest)
            _failure_details(view, inst, redactor, log_lines)
            _cause(view, inst, redactor, causes)
        inst.message = redactor(inst.message)
    report.critical_path, report.critical_seconds = critical_path(report.instances)
    for iid in report.critical_path:
        report.instances[iid].critical = True
    report.steps = summarize_steps(report.instances)
    report.provenance = _provenance(root, report.run_id, redactor)
    return report


def _provenance(root: Path, run_id: str, redactor: Redactor) -> Any | None:
    """The run's provenance facts (the same the crate holds); None when its records cannot say."""
    from repropack.errors import ReproError
    from repropack.provenance.source import read_facts

    try:
        return read_facts(root, run_id, redactor)[0]
    except (ReproError, OSError, ValueError):
        return None


def _last_run(records: Iterable[dict[str, Any]]) -> tuple[dict | None, list[dict], set[str]]:
    """(the last `run` record, the records of that run, ids finished before it)."""
    run: dict | None = None
    mine: list[dict] = []
    done: set[str] = set()
    for record in records:
        kind = record.get("t")
        if kind == "run":
            if run is not None:
                done.update(r["id"] for r in mine if r.get("t") == "done")
            run, mine = record, []
        elif run is not None and record.get("run") == run.get("run"):
            mine.append(record)
        elif kind == "done" and "id" in record:
            done.add(record["id"])
    return run, mine, done


def _fold(records: Sequence[dict], running: bool) -> dict[str, Instance]:
    """Instance id -> Instance, from the run's start/attempt/done/failed records (run order)."""
    from repropack.run.journal import STATE_KINDS

    out: dict[str, Instance] = {}
    for record in records:
        iid = record.get("id")
        if iid is None:
            continue
        kind = record["t"]
        if kind not in STATE_KINDS:  # e.g. a submit intent: the start record follows
            continue
        inst = out.get(iid)
        if inst is None:
            inst = out[iid] = Instance(id=iid, step=record.get("step") or _step_of(iid), state=RUNNING)
        if record.get("step"):
            inst.step = record["step"]
        if kind == "start":
            req = record.get("req") or {}
            inst.attempts.append(Attempt(attempt=record.get("attempt", 1), status="running", start=record.get("time"),
                                         req_cpus=int(req.get("cpus") or 1), req_memory=req.get("memory"),
                                         req_time=req.get("time")))
            inst.state = RUNNING if running else INTERRUPTED
        elif kind == "attempt":
            _end_attempt(inst, record)
        elif kind == "done":
            inst.state, inst.dir = DONE, record.get("dir")
        elif kind == "failed":
            inst.state, inst.dir = FAILED, record.get("dir") or inst.dir
            inst.failure, inst.message = record.get("failure"), str(record.get("message") or "")
    return out


def _end_attempt(inst: Instance, record: Mapping[str, Any]) -> None:
    number = record.get("attempt", 1)
    attempt = next((a for a in reversed(inst.attempts) if a.attempt == number), None)
    if attempt is None:  # failed before it started (e.g. could not be submitted)
        attempt = Attempt(attempt=number, status="failed")
        inst.attempts.append(attempt)
    metrics = record.get("metrics") or {}
    req = metrics.get("requested") or {}
    attempt.status = record.get("status", "failed")
    attempt.start = metrics.get("start", attempt.start)
    attempt.end = metrics.get("end")
    attempt.wall = metrics.get("wall")
    if attempt.wall is None and attempt.start is not None and attempt.end is not None:
        attempt.wall = attempt.end - attempt.start
    attempt.cpu = metrics.get("cpu")
    attempt.peak_rss = metrics.get("peak_rss")
    attempt.peak_rss_source, attempt.cpu_source = metrics.get("peak_rss_source"), metrics.get("cpu_source")
    if req:
        attempt.req_cpus = int(req.get("cpus") or attempt.req_cpus)
        attempt.req_memory = req.get("memory", attempt.req_memory)
        attempt.req_time = req.get("time", attempt.req_time)
    attempt.failure = record.get("failure") or metrics.get("failure")
    attempt.message = str(record.get("message") or "")
    attempt.exit = record.get("exit", metrics.get("exit_code"))
    attempt.signal = record.get("signal")
    attempt.backend = metrics.get("backend")
    cost = metrics.get("cost")
    if isinstance(cost, Mapping) and isinstance(cost.get("estimate"), (int, float)):
        attempt.cost, attempt.currency = float(cost["estimate"]), str(cost.get("currency") or "USD")
    if attempt.status == "ok":
        inst.state = DONE


def _add_untouched(instances: dict[str, Instance], records: Sequence[dict]) -> None:
    """The instances the run itself journaled as skipped (cached) or never started (not-run)."""
    for record in records:
        kind, ids = record.get("t"), record.get("ids")
        if kind in ("skipped", "not-run") and isinstance(ids, list):
            for iid in ids:
                if isinstance(iid, str) and iid not in instances:
                    instances[iid] = Instance(id=iid, step=_step_of(iid), state=CACHED if kind == "skipped" else NOT_RUN)


def _step_of(iid: str) -> str:
    return iid.split("[", 1)[0]


def _view(root: Path, run_id: str) -> Any | None:
    """The run's records (any format the reader knows); None when its folder is gone (cleaned)."""
    from repropack.run.records.reader import open_run

    try:
        return open_run(root, run_id)
    except FileNotFoundError:
        return None


def _add_deps(root: Path, report: Report, view: Any | None) -> None:
    """Fill each instance's deps from the run's records; add the instances it planned and found cached."""
    instances = report.instances
    if view is not None and view.format >= 2:
        report.deps_source = "records"
        for iid, record in view.instances.items():  # the run's plan order, which the timeline keeps per step
            inst = instances.get(iid)
            if inst is None:
                inst = instances[iid] = Instance(id=iid, step=record.step,
                                                 state=CACHED if record.cached_from else NOT_RUN)
            inst.step = record.step
            inst.deps = list(record.deps or [])
    else:
        report.deps_source = "run-dirs"
        if view is not None:
            _deps_from_run_dirs(root, view, instances)
    for inst in instances.values():
        inst.deps = [d for d in inst.deps if d in instances and d != inst.id]
    if not any(inst.deps for inst in instances.values()) and len(instances) > 1:
        report.deps_source = "none"


def _deps_from_run_dirs(root: Path, view: Any, instances: Mapping[str, Instance]) -> None:
    """Format 1 recorded no deps: an instance depends on whoever made its inputs (this run's
    folders first, then the journal's done records, so cached producers count too)."""
    from repropack.run.journal import read_records
    from repropack.run.lookup import JOURNAL

    producers: dict[str, str] = {}
    for record in read_records(root / JOURNAL, kinds=("done",)):
        for path in record.get("outputs") or {}:
            producers[path] = record["id"]
    for iid, record in view.instances.items():
        producers.update((path, iid) for path in record.outputs)
    inputs = {iid: record.inputs for iid, record in view.instances.items()}
    inputs.update(_cached_inputs(root, [iid for iid in instances if iid not in inputs]))
    for iid, paths in inputs.items():
        if iid in instances:
            instances[iid].deps = sorted({producers[p] for p in paths if p in producers} - {iid})


def _cached_inputs(root: Path, ids: Sequence[str]) -> dict[str, list[str]]:
    """The recorded inputs of instances this run did not make, from the runs their results rest on."""
    from repropack.run.lookup import evidence_runs
    from repropack.run.records.reader import open_run

    evidence = evidence_runs(root)
    by_run: dict[str, set[str]] = {}
    for iid in ids:
        if iid in evidence:
            by_run.setdefault(evidence[iid], set()).add(iid)
    found: dict[str, list[str]] = {}
    for run_id, wanted in by_run.items():
        try:
            view = open_run(root, run_id, only=wanted)
        except FileNotFoundError:
            continue
        found.update((iid, record.inputs) for iid, record in view.instances.items())
    return found


def _failure_details(view: Any, inst: Instance, redactor: Redactor, lines: int) -> None:
    if inst.failure is None and inst.attempts:
        inst.failure = inst.attempts[-1].failure
    last = view.last_attempt(inst.id)
    if last is None:
        return
    inst.command = redactor(_command_of(view.script(inst.id, last) or ""))
    for name in ("stderr", "stdout"):
        data = view.stream(last, name, max_bytes=LOG_BYTES)
        text = "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
        if text.strip():
            inst.log_tail[name] = redactor(text)


def _cause(view: Any, inst: Instance, redactor: Redactor, causes: Any) -> None:
    from repropack.observe.attempts import diagnose_attempt

    cause = diagnose_attempt(view, inst.id, inst.failure, causes)
    if cause is not None:
        inst.cause = {**cause.to_record(), "evidence": redactor(cause.evidence)}


def _command_of(script: str) -> str:
    """The step's command from script.sh (without the shebang, the label comment and `set -euo pipefail`)."""
    lines = script.splitlines()
    while lines and (lines[0].startswith("#") or lines[0].strip() == "set -euo pipefail"):
        lines.pop(0)
    return "\n".join(lines).strip()
