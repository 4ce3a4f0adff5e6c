"""From what a SLURM job left behind to a JobStatus: its results record first, the scheduler's state else.

The job-side script writes one results line per member (``results/slurm-<jobid>.jsonl``); that line
is the truth about the member (exit status, OOM and time-out as seen from its cgroup, figures,
output digests), whether or not SLURM keeps accounting. A member without a line is classified from
the job's final state in squeue (kept for MinJobAge) or sacct.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from repropack.backends.base import CANCELLED, EXIT, LOST, OOM, TIMEOUT, JobHandle, JobState, JobStatus
from repropack.backends.slurm.cli import INFRASTRUCTURE

METRIC_KEYS = ("start", "end", "wall", "cpu", "peak_rss", "peak_rss_source", "cpu_source")


@dataclass
class ResultsFile:
    """New complete lines of one writer's results file, read incrementally (a torn last line waits)."""

    path: str
    offset: int = 0
    records: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def read(self) -> int:
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return 0
        if size <= self.offset:
            return 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        self.offset += end + 1
        found = 0
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "instance" in record:
                self.records[(str(record["instance"]), int(record.get("attempt", 0)))] = record
                found += 1
        return found


def from_record(handle: JobHandle, record: dict[str, Any]) -> JobStatus:
    metrics = {k: record[k] for k in METRIC_KEYS if record.get(k) is not None}
    metrics.update({"exit_code": record.get("exit_status"), "job_id": record.get("job_id"),
                    "writer": record.get("writer"), "outputs": record.get("outputs") or []})
    failure = record.get("failure")
    code = record.get("exit_status")
    started = record.get("start")
    if failure is None and code == 0:
        return JobStatus(handle, JobState.SUCCEEDED, exit_code=0, metrics=metrics, started=started)
    return JobStatus(handle, JobState.FAILED, exit_code=code, signal=record.get("signal"), failure=failure or EXIT,
                     message=record.get("message") or f"exit code {code}", metrics=metrics, started=started)


# final scheduler states of a job that wrote no record for a member -> (failure class, message)
_CLASSES = {
    "OUT_OF_MEMORY": (OOM, "out of memory (SLURM: OUT_OF_MEMORY)"),
    "TIMEOUT": (TIMEOUT, "time limit exceeded (SLURM: TIMEOUT)"),
    "DEADLINE": (TIMEOUT, "deadline reached (SLURM: DEADLINE)"),
    "CANCELLED": (CANCELLED, "cancelled (SLURM: CANCELLED)"),
    "FAILED": (EXIT, "the job failed before it wrote a results record for this instance (SLURM: FAILED)"),
}


def needs_resubmit(state: str | None) -> bool:
    """The infrastructure ended it, or it vanished without a record: run it again (not the step's fault)."""
    return state is None or state in INFRASTRUCTURE or state in ("COMPLETED", "SPECIAL_EXIT", "REVOKED")


def without_record(handle: JobHandle, state: str | None, job_id: str, *, exit_code: int | None = None,
                   why: str = "") -> JobStatus:
    failure, message = _CLASSES.get(state or "", (LOST, ""))
    if failure == LOST:
        message = (f"lost: job {job_id} ended ({state or 'gone from squeue and sacct'}) without a results record"
                   f"{why}")
    return JobStatus(handle, JobState.FAILED, exit_code=exit_code, failure=failure, message=message,
                     metrics={"job_id": job_id})
