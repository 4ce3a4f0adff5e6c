"""Collecting a finished Batch job: results record, streams, CloudWatch log, verified outputs.

Nothing a job uploaded is trusted before it is checked: each output is downloaded beside the
attempt, its sha256 compared with the digest the job side computed (a mismatch is fetched once
more, then the attempt fails as ``digest-mismatch`` and the file is never used), and only then
moved to the path the runner gave the step. The runner writes the attempt's results line from the
status (records format 2), with the job side's figures and the estimated cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repropack.backends.base import EXIT, LOST, SIGNAL, JobState, JobStatus
from repropack.backends.batch import aws
from repropack.backends.batch.staging import DigestMismatch, Stager
from repropack.backends.batch.status import Reading
from repropack.errors import BackendError
from repropack.run.records import format as records
from repropack.run.safepath import ProjectTree, UnsafePath

LOG_GROUP = "/aws/batch/job"
CLOUDWATCH = "cloudwatch"  # <run folder>/cloudwatch/<instance folder>.attempt-<n>.log


def log_path(stager: Stager, run_id: str, receipt: dict[str, Any]) -> Path:
    """Where the container's CloudWatch log is kept: in the run's folder (an attempt's folder is a reused slot)."""
    from repropack.run.rundir import instance_dirname, run_root

    folder = run_root(stager.project, run_id) / CLOUDWATCH
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{instance_dirname(receipt['instance'])}.attempt-{receipt['attempt']}.log"


def collect(stager: Stager, watched: Any, reading: Reading, run_id: str) -> JobStatus:
    receipt, handle = watched.receipt, watched.handle
    adir = Path(receipt["attempt_dir"])
    keys = receipt["keys"]
    try:
        results = stager.get_json(keys["results"])
        adir.mkdir(parents=True, exist_ok=True)  # an adopted job's folder may be gone with its runner
        for name in ("stdout", "stderr"):
            data = stager.get_bytes(keys[name]) or b""
            (adir / name).write_bytes(data)
        log_note = copy_log(stager, reading.log_stream, log_path(stager, run_id, receipt))
    except (BackendError, OSError, ValueError) as exc:
        return JobStatus(handle, JobState.FAILED, failure=LOST, message=f"cannot collect the job: {exc}",
                         metrics=_metrics(watched, reading, None))
    metrics = _metrics(watched, reading, results)
    if log_note:
        metrics["cloudwatch"] = log_note
    state, failure, message = reading.state, reading.failure, reading.message
    code = reading.exit_code if results is None else results.get("exit_status", reading.exit_code)
    if results is not None and results.get("failure"):
        state, failure, message = JobState.FAILED, results["failure"], str(results.get("message") or "")
    elif state is JobState.FAILED and failure == LOST and isinstance(code, int) and code != 0:
        # the job side saw the step end (some engines, moto among them, report no exit code): its figure holds
        failure, message = (SIGNAL, f"killed by signal {code - 128}") if 128 < code <= 192 else \
            (EXIT, f"exit code {code}")
    elif state is JobState.SUCCEEDED and results is None:
        state, failure, message = JobState.FAILED, LOST, "the job succeeded but left no results record"
    if state is JobState.SUCCEEDED:
        try:
            receive_outputs(stager, receipt, results or {}, adir)
        except DigestMismatch as exc:
            state, failure, message = JobState.FAILED, "digest-mismatch", f"{exc}; the download was not used"
        except (BackendError, OSError, UnsafePath) as exc:
            state, failure, message = JobState.FAILED, "staging", f"cannot place an output: {exc}"
    if state is JobState.FAILED and failure is None:
        failure, message = EXIT, f"exit code {code}"
    if state is JobState.SUCCEEDED:
        return JobStatus(handle, state, exit_code=0, metrics=metrics, started=reading.started)
    signal = code - 128 if isinstance(code, int) and 128 < code <= 192 else None
    return JobStatus(handle, JobState.FAILED, exit_code=code, signal=signal, failure=failure, message=message,
                     metrics=metrics, started=reading.started)


def receive_outputs(stager: Stager, receipt: dict[str, Any], results: dict[str, Any],
                    adir: Path) -> list[dict[str, Any]]:
    """Download, verify and place every output the job reported; returns records' output entries."""
    reported = {o["path"]: o for o in results.get("outputs", [])}
    entries = []
    with ProjectTree(stager.project) as tree:
        for n, item in enumerate(receipt["outputs"]):
            got = reported.get(item["path"])
            if got is None:
                continue  # the runner reports it missing
            target = adir / f".download-{n}"
            try:
                stager.download_verified(item["key"], target, got["sha256"])
            except DigestMismatch as exc:
                raise DigestMismatch(f"{item.get('declared', item['path'])}: {exc}") from None
            stager.place(tree, target, item["path"], packed=bool(got.get("packed")))
            digest = got["sha256"]
            if got.get("packed"):
                from repropack.run.trees import tree_digest

                digest = tree_digest(stager.project / item["path"])
            entries.append(records.output_entry(item.get("declared", item["path"]), digest, got.get("size")))
    return entries


def copy_log(stager: Stager, stream: str | None, target: Path) -> str | None:
    """The container's CloudWatch log events, one line each; a note when they cannot be read."""
    if not stream:
        return "no log stream reported"
    lines, token = [], None
    try:
        while True:
            kwargs = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            reply = stager.c.logs.get_log_events(**kwargs)
            lines += [e.get("message", "") for e in reply.get("events", [])]
            if not reply.get("events") or reply.get("nextForwardToken") in (None, token):
                break
            token = reply.get("nextForwardToken")
    except aws.aws_errors() as exc:
        return f"CloudWatch Logs: {aws.describe(exc)[0]}"
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return None


def _metrics(watched: Any, reading: Reading, results: dict[str, Any] | None) -> dict[str, Any]:
    start, end = reading.started, reading.stopped
    metrics: dict[str, Any] = {"start": start, "end": end,
                               "wall": round(end - start, 6) if start and end else None}
    if results:
        for name in ("start", "end", "wall", "cpu", "peak_rss", "peak_rss_source", "cpu_source"):
            if results.get(name) is not None:
                metrics[name] = results[name]
    metrics["batch_job_id"] = watched.batch_id
    if watched.resubmits:
        metrics["resubmitted"] = list(watched.resubmits)
    requested = watched.receipt.get("reserved") or watched.receipt.get("requested", {})
    prices = watched.settings.prices
    cost = prices.estimate(wall=metrics.get("wall"), cpus=int(requested.get("cpus") or 1),
                           memory=requested.get("memory"))
    if cost is not None:
        metrics["cost"] = {"estimate": cost, "currency": prices.currency, "prices": prices.to_record()}
    return metrics
