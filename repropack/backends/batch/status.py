"""What a DescribeJobs entry means for the runner (pure: tested with captured replies).

Batch reports a job's state, a ``statusReason`` and, per attempt, the container's exit code and
reason. The classes the runner keeps (exit, signal, oom, timeout, cancelled, lost) are read from
them here, and so are *infrastructure* failures -- the instance was reclaimed (Spot), the host
was terminated, the container never started on it -- which are resubmitted without counting
against the step's retries: the step did not fail, the machine under it went away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repropack.backends.base import CANCELLED, EXIT, LOST, OOM, SIGNAL, TIMEOUT, JobState

RUNNING_STATES = ("STARTING", "RUNNING")
WAITING_STATES = ("SUBMITTED", "PENDING", "RUNNABLE")
CANCEL_REASON = "repropack: stopped by the runner"
# Reasons AWS gives when the machine went away under a job (AWS Batch user guide, "Automated job retries").
INFRA_REASONS = ("host ec2", "spot", "instance terminated", "instance was terminated", "resourceinitializationerror",
                 "cannotinspectcontainererror", "dockertimeouterror", "task failed to start")
OOM_REASONS = ("outofmemoryerror", "out of memory", "oom")
TIMEOUT_REASONS = ("attempt duration exceeded", "attemptdurationseconds", "job timed out")
STAGING_FAILED, UPLOAD_FAILED = 96, 95  # the job side's own exit statuses (stage.py)


@dataclass(frozen=True)
class Reading:
    state: JobState
    exit_code: int | None = None
    failure: str | None = None
    message: str = ""
    started: float | None = None  # seconds since the epoch
    stopped: float | None = None
    infrastructure: bool = False  # failed because the machine went away: resubmit, no retry counted
    log_stream: str | None = None


def _seconds(ms: Any) -> float | None:
    return ms / 1000.0 if isinstance(ms, (int, float)) and ms > 0 else None


def _reasons(job: Mapping[str, Any]) -> tuple[str, int | None, str | None]:
    """(every reason text, the last exit code, the last log stream) of a job."""
    texts = [str(job.get("statusReason") or "")]
    container = job.get("container") or {}
    code = container.get("exitCode")
    stream = container.get("logStreamName")
    texts.append(str(container.get("reason") or ""))
    attempts = job.get("attempts") or []
    if attempts:
        last = attempts[-1]
        texts.append(str(last.get("statusReason") or ""))
        inner = last.get("container") or {}
        texts.append(str(inner.get("reason") or ""))
        code = inner.get("exitCode", code) if inner.get("exitCode") is not None else code
        stream = inner.get("logStreamName") or stream
    return " | ".join(t for t in texts if t), code, stream


def read(job: Mapping[str, Any]) -> Reading:
    status = job.get("status", "")
    started, stopped = _seconds(job.get("startedAt")), _seconds(job.get("stoppedAt"))
    text, code, stream = _reasons(job)
    if status in WAITING_STATES:
        return Reading(JobState.PENDING, log_stream=stream)
    if status in RUNNING_STATES:
        return Reading(JobState.RUNNING, started=started if status == "RUNNING" else None, log_stream=stream)
    if status == "SUCCEEDED":
        return Reading(JobState.SUCCEEDED, exit_code=0 if code is None else code, started=started, stopped=stopped,
                       log_stream=stream)
    lowered = text.lower()
    base = {"started": started, "stopped": stopped, "log_stream": stream, "exit_code": code}
    if CANCEL_REASON.lower() in lowered:
        return Reading(JobState.FAILED, failure=CANCELLED, message="stopped", **base)
    if any(r in lowered for r in TIMEOUT_REASONS):
        return Reading(JobState.FAILED, failure=TIMEOUT, message=f"time limit exceeded ({text})", **base)
    if any(r in lowered for r in OOM_REASONS):
        return Reading(JobState.FAILED, failure=OOM, message=f"out of memory ({text})", **base)
    if code is None and any(r in lowered for r in INFRA_REASONS):
        return Reading(JobState.FAILED, failure=LOST, message=f"infrastructure: {text}", infrastructure=True, **base)
    if code is None:
        return Reading(JobState.FAILED, failure=LOST, message=text or "the job failed without an exit status", **base)
    if code in (STAGING_FAILED, UPLOAD_FAILED):
        return Reading(JobState.FAILED, failure="staging", message=f"staging failed (exit code {code})", **base)
    if 128 < code <= 192:
        return Reading(JobState.FAILED, failure=SIGNAL, message=f"killed by signal {code - 128}", **base)
    return Reading(JobState.FAILED, failure=EXIT, message=f"exit code {code}", **base)
