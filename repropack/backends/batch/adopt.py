"""Adopting the jobs of a runner that died: their tags name their receipts in the bucket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repropack.backends.base import LOST, JobHandle, JobState, JobStatus
from repropack.backends.batch import aws
from repropack.backends.batch.watched import Watched


def adopt(backend: Any, handles: Sequence[JobHandle]) -> None:
    for handle in handles:
        parent, _, index = handle.job_id.partition(":")
        found = None
        for s in backend.settings.values():
            reply = aws.call("DescribeJobs failed", backend.clients(s).batch.describe_jobs, jobs=[parent])
            if reply.get("jobs"):
                found = (s, reply["jobs"][0])
                break
        if found is None:
            backend._finished[handle.job_id] = JobStatus(handle, JobState.FAILED, failure=LOST,
                                                         message=f"no profile of this run knows the job {parent}")
            continue
        s, job = found
        key = (job.get("tags") or {}).get("repropack-receipt")
        stager = backend.stager(s)
        receipt = stager.get_json(key) if key else None
        if receipt is None:
            backend._finished[handle.job_id] = JobStatus(handle, JobState.FAILED, failure=LOST,
                                                         message=f"the job {parent} has no receipt to collect it by")
            continue
        task = receipt["tasks"][int(index) if index else 0]
        moved = stager.get_json(task["keys"]["results"].rsplit("/", 1)[0] + "/moved.json") or {}
        w = Watched(handle, task, s, moved.get("batch_id", handle.job_id), resubmits=moved.get("resubmits", []))
        backend._watch[handle.job_id] = w
