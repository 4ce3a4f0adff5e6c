"""An in-memory backend with scripted outcomes, for the conformance suite and in-process runner tests.

Each job follows its :class:`Script`: pending for ``queued`` seconds, running for ``runs``
seconds, then the scripted outcome. A job that ends well runs its ``script.sh`` with bash
at that moment (in the project, with the job's environment), so the runner finds its
outputs as it would on a real backend. ``poll`` never blocks: it returns at once, like a
remote backend, which is what lets a test count the runner's polls. Jobs live in a
:class:`FakeCluster`, which can outlive one backend object (``survives`` makes
``adopt`` re-attach to them, like SLURM; otherwise adopted handles are lost, like local).
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from repropack.backends.base import (
    CANCELLED,
    EXIT,
    LOST,
    OOM,
    SIGNAL,
    TIMEOUT,
    Backend,
    Capabilities,
    Job,
    JobHandle,
    JobState,
    JobStatus,
)
from repropack.errors import BackendError


@dataclass(frozen=True)
class Script:
    outcome: str = "ok"  # ok | exit | signal | oom | lost | run (run: the outcome of its script.sh)
    queued: float = 0.0  # seconds pending before it runs
    runs: float = 0.0  # seconds it runs
    exit_code: int = 3  # for "exit"
    signal: int = 9  # for "signal"


@dataclass
class FakeJob:
    handle: JobHandle
    job: Job
    script: Script
    submitted: float
    started: float | None = None
    status: JobStatus | None = None
    cancelled: bool = False


@dataclass
class FakeCluster:
    """The jobs, wherever the backend object that submitted them went."""

    jobs: dict[str, FakeJob] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeBackend(Backend):
    name = "fake"
    poll_interval = 0.05
    poll_max_interval = 0.2

    def __init__(self, cluster: FakeCluster | None = None, *, scripts: Callable[[Job], Script] | None = None,
                 survives: bool = False, enforces_time: bool = False):
        self.cluster = cluster or FakeCluster()
        self.scripts = scripts or (lambda job: Script(outcome="run"))
        self.survives = survives
        self.enforces_time = enforces_time
        self.polls = 0
        self.poll_waits: list[float] = []
        self.said: list[str] = []  # what the backend has to tell the user (Backend.notes)
        self.say_on_poll: dict[int, str] = {}  # poll number -> a note it learns then
        self.fail_polls = 0  # the next this many polls raise BackendError
        self.submit_calls: list[int] = []  # the size of each submit_many batch
        self.mine: set[str] = set()

    # -- contract ---------------------------------------------------------------------
    def submit(self, job: Job) -> JobHandle:
        script = self.scripts(job)
        if script.outcome == "unsubmittable":
            raise BackendError(self.name, f"scripted: {job.instance_id} cannot be submitted")
        (job.attempt_dir / "script.sh").write_text(job.script, encoding="utf-8")
        now = time.time()
        with self.cluster.lock:
            job_id = f"fake-{next(self.cluster.ids)}"
        started = now if script.queued <= 0 else None
        handle = JobHandle(self.name, job_id, job.instance_id, job.attempt, started=started)
        self.cluster.jobs[job_id] = FakeJob(handle, job, script, now, started)
        self.mine.add(job_id)
        return handle

    def submit_many(self, jobs: Sequence[Job]) -> list[JobHandle | Exception]:
        self.submit_calls.append(len(jobs))
        return super().submit_many(jobs)

    @property
    def notes(self) -> list[str]:
        return list(self.said)

    def poll(self, handles: Sequence[JobHandle], wait: float = 0.0) -> dict[str, JobStatus]:
        self.polls += 1
        self.poll_waits.append(wait)
        if self.polls in self.say_on_poll:
            self.said.append(self.say_on_poll[self.polls])
        if self.fail_polls > 0:
            self.fail_polls -= 1
            raise BackendError(self.name, "scripted poll failure: the controller did not answer")
        now = time.time()
        out = {}
        for handle in handles:
            entry = self.cluster.jobs.get(handle.job_id)
            if entry is None or handle.job_id not in self.mine:
                continue
            self._advance(entry, now)
            if entry.status is not None:
                out[handle.job_id] = entry.status
            elif entry.started is not None:
                out[handle.job_id] = JobStatus(handle, JobState.RUNNING, started=entry.started)
        return out

    def cancel(self, handles: Iterable[JobHandle], *, force: bool = False) -> None:
        for handle in handles:
            entry = self.cluster.jobs.get(handle.job_id)
            if entry is not None and entry.status is None:
                entry.cancelled = True

    def adopt(self, handles: Sequence[JobHandle]) -> None:
        for handle in handles:
            self.mine.add(handle.job_id)
            entry = self.cluster.jobs.get(handle.job_id)
            if entry is None:  # never submitted (an intent whose submit did not go through): lost
                entry = self.cluster.jobs[handle.job_id] = FakeJob(handle, None, Script(), time.time())  # type: ignore[arg-type]
                entry.status = JobStatus(handle, JobState.FAILED, failure=LOST, message="fake: no such job")
            if not self.survives and entry.status is None:
                entry.status = JobStatus(handle, JobState.FAILED, failure=LOST,
                                         message="fake: jobs do not outlive their runner")

    def forget(self, handles: Iterable[JobHandle]) -> None:
        for handle in handles:
            self.mine.discard(handle.job_id)

    # -- the scripted life of a job -------------------------------------------------------
    def _advance(self, entry: FakeJob, now: float) -> None:
        if entry.status is not None:
            return
        script, handle = entry.script, entry.handle
        if entry.cancelled:
            entry.status = JobStatus(handle, JobState.FAILED, exit_code=143, signal=15, failure=CANCELLED,
                                     message="cancelled", started=entry.started, metrics=self._metrics(entry, now))
            return
        if entry.started is None:
            if now - entry.submitted < script.queued:
                return
            entry.started = entry.submitted + script.queued
        limit = entry.job.resources.time if entry.job is not None else None
        if self.enforces_time and limit and now - entry.started >= limit and script.runs > limit:
            entry.status = self._failed(entry, now, TIMEOUT, None, None, f"time limit of {limit} s reached")
            return
        if now - entry.started < script.runs:
            return
        entry.status = self._end(entry, now)

    def _end(self, entry: FakeJob, now: float) -> JobStatus:
        script = entry.script
        if script.outcome == "exit":
            return self._failed(entry, now, EXIT, script.exit_code, None, f"exit code {script.exit_code}")
        if script.outcome == "signal":
            return self._failed(entry, now, SIGNAL, 128 + script.signal, script.signal, f"killed by signal {script.signal}")
        if script.outcome == "oom":
            return self._failed(entry, now, OOM, 137, None, "out of memory (scripted)")
        if script.outcome == "lost":
            return self._failed(entry, now, LOST, None, None, "the node went away (scripted)")
        if script.outcome == "run":
            code = self._run_script(entry.job)
            if code != 0:
                return self._failed(entry, now, EXIT, code, None, f"exit code {code}")
        return JobStatus(entry.handle, JobState.SUCCEEDED, exit_code=0, started=entry.started,
                         metrics=self._metrics(entry, now, 0))

    def _failed(self, entry: FakeJob, now: float, failure: str, code: int | None, sig: int | None,
                message: str) -> JobStatus:
        return JobStatus(entry.handle, JobState.FAILED, exit_code=code, signal=sig, failure=failure, message=message,
                         started=entry.started, metrics=self._metrics(entry, now, code))

    @staticmethod
    def _metrics(entry: FakeJob, now: float, code: int | None = None) -> dict[str, Any]:
        start = entry.started or now
        return {"start": start, "end": now, "wall": round(now - start, 6), "exit_code": code}

    @staticmethod
    def _run_script(job: Job) -> int:
        with open(job.stdout_path, "wb") as out, open(job.stderr_path, "wb") as err:
            return subprocess.run(["bash", "-euo", "pipefail", str(job.script_path)], cwd=job.project,
                                  env=dict(job.env), stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode


def fake_capabilities(*, enforces_time: bool = False, survives: bool = False, co_schedules: bool = False,
                      cpus: int = 8, memory: int = 16 << 30) -> Capabilities:
    return Capabilities(shared_filesystem=True, enforces_time=enforces_time, enforces_memory=False,
                        co_schedules=co_schedules, survives_runner=survives, cpus=cpus, memory=memory, gpus=0)
