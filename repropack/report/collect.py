"""Read the journal and run directories of a project into a :class:`~repropack.report.model.Report`.

The journal gives every attempt's times, metrics (wall, CPU, peak memory),
requested resources and failure class; run directories give what a failure
looks like (the script that ran, the tail of its logs). Dependencies come from
expanding the project's manifest (with the run's ``--param`` values); when it no
longer expands, from the inputs and outputs the run directories recorded.
Everything shown from a script, log or argv passes through the redactor first.
"""

from __future__ import annotations

import json
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
    run, records, done_before = _last_run(read_records(root / JOURNAL))
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
    dag = _expand_dag(manifest, run.get("argv") or []) if manifest is not None else None
    _add_deps(root, report, dag, done_before)
    causes = None
    for inst in report.instances.values():
        if inst.state == FAILED:
            if causes is None:
                from repropack.observe.causes import table_for

                causes = table_for(manifest)
            _failure_details(root, inst, redactor, log_lines)
            _cause(root, inst, redactor, causes)
        inst.message = redactor(inst.message)
    report.critical_path, report.critical_seconds = critical_path(report.instances)
    for iid in report.critical_path:
        report.instances[iid].critical = True
    report.steps = summarize_steps(report.instances)
    return report


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


def _expand_dag(manifest: Any, argv: Sequence[str]) -> Any | None:
    """The DAG with the run's --param values; None when it does not expand."""
    from repropack.errors import ReproError

    try:
        from repropack.run.dag import expand

        params = dict(p.partition("=")[::2] for p in _params(argv))
        return expand(manifest, {k: v for k, v in params.items() if k in manifest.params})
    except (ReproError, OSError, ValueError):
        return None


def _params(argv: Sequence[str]) -> list[str]:
    out = []
    for n, arg in enumerate(argv):
        if arg == "--param" and n + 1 < len(argv):
            out.append(argv[n + 1])
        elif arg.startswith("--param="):
            out.append(arg[len("--param="):])
    return out


def _add_deps(root: Path, report: Report, dag: Any | None, done_before: set[str]) -> None:
    """Fill each instance's deps; add the DAG's instances this run skipped as cached (or not run)."""
    instances = report.instances
    if dag is not None and all(iid in dag.instances for iid in instances):
        report.deps_source = "manifest"
        # The skipped instances are known only when the DAG is the one the run had (no step selection).
        whole = len(dag.instances) == report.total
        merged: dict[str, Instance] = {}
        for iid, node in dag.instances.items():  # topological order, which the timeline keeps per step
            inst = instances.get(iid)
            if inst is None:
                if not whole:
                    continue
                state = CACHED if iid in done_before else NOT_RUN
                inst = Instance(id=iid, step=node.step.name, state=state)
            inst.deps = [d for d in node.deps if d in dag.instances]
            merged[iid] = inst
        merged.update((iid, inst) for iid, inst in instances.items() if iid not in merged)
        report.instances = merged
        return
    report.deps_source = "run-dirs"
    _deps_from_run_dirs(root, instances)
    if not any(inst.deps for inst in instances.values()) and len(instances) > 1:
        report.deps_source = "none"


def _deps_from_run_dirs(root: Path, instances: Mapping[str, Instance]) -> None:
    producers: dict[str, str] = {}
    inputs: dict[str, list[str]] = {}
    for iid, inst in instances.items():
        if not inst.dir:
            continue
        try:
            data = json.loads((root / inst.dir / "instance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for path in data.get("outputs") or []:
            producers[path] = iid
        if isinstance(data.get("inputs"), list):
            inputs[iid] = data["inputs"]
    for iid, paths in inputs.items():
        instances[iid].deps = sorted({producers[p] for p in paths if p in producers and producers[p] != iid})


def _failure_details(root: Path, inst: Instance, redactor: Redactor, lines: int) -> None:
    from repropack.run.rundir import InstanceDir, tail

    if inst.failure is None and inst.attempts:
        inst.failure = inst.attempts[-1].failure
    if not inst.dir:
        return
    last = InstanceDir(root / inst.dir).last_attempt()
    if last is None:
        return
    try:
        script = last.script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        script = ""
    inst.command = redactor(_command_of(script))
    for name in ("stderr", "stdout"):
        text = tail(getattr(last, name), lines, LOG_BYTES)
        if text.strip():
            inst.log_tail[name] = redactor(text)


def _cause(root: Path, inst: Instance, redactor: Redactor, causes: Any) -> None:
    from repropack.observe.causes import diagnose_dir

    last = inst.attempts[-1] if inst.attempts else None
    cause = diagnose_dir(root / inst.dir if inst.dir else None, inst.failure, causes,
                         exit_status=last.exit if last else None, signal=last.signal if last else None)
    if cause is not None:
        inst.cause = {**cause.to_record(), "evidence": redactor(cause.evidence)}


def _command_of(script: str) -> str:
    """The step's command from script.sh (without the shebang, the label comment and `set -euo pipefail`)."""
    lines = script.splitlines()
    while lines and (lines[0].startswith("#") or lines[0].strip() == "set -euo pipefail"):
        lines.pop(0)
    return "\n".join(lines).strip()
