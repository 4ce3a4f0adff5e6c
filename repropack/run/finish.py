"""The finisher: an ended attempt's outcome, its outputs checked and recorded, success or failure.

The failed-attempt record is built in one place (:meth:`Finisher.record_failed_attempt`),
for single instances and pipe-unit members alike; whether a failure is retried is the
:class:`~repropack.run.retry.RetryPolicy`'s answer.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from repropack.backends.base import CANCELLED, TIMEOUT, JobStatus
from repropack.run import rundir
from repropack.run.attempt import OutputFailure, collect_outputs, resources_for
from repropack.run.records.format import output_digest
from repropack.run.state import InstanceResult


class Finisher:
    def __init__(self, ctx: Any, state: Any, journal: Any, records: Any, tree: Any, scheduler: Any, hashes: Any,
                 frontier: Any, retry: Any, done: Any = None):
        self.ctx, self.state, self.journal, self.records, self.tree = ctx, state, journal, records, tree
        self.scheduler, self.hashes, self.frontier, self.retry = scheduler, hashes, frontier, retry
        self.done = done if done is not None else {}  # instance -> the journal's latest done record (resume)
        self._skipped: list[str] = []  # up-to-date instances not yet journaled
        self.kept: dict[str, Path] = {}  # instance -> failed/<inst-dir>, where its failed attempts are kept

    def finish(self, active: Any, status: JobStatus) -> None:
        """A single instance's attempt ended (it is no longer active, its slot given back)."""
        self.scheduler.release(active.inst.id)
        failure, message = self.outcome(active, status)
        metrics = self.metrics(active, status, failure)
        collected: dict[str, Any] = {}
        if failure is None:
            try:
                collected = collect_outputs(self.tree, active.outputs, active.inst.step.expect)
            except OutputFailure as exc:
                failure, message = exc.failure, exc.message
        metrics["failure"] = failure
        if failure is not None:
            self.attempt_failed(active.inst, active.attempt, failure, message, active.resources,
                                active.attempt_dir, metrics=metrics, status=status, command=active.command)
            return
        self.succeeded(active, collected, metrics, status=status)

    def adopted(self, active: Any, status: JobStatus) -> bool:
        """A killed run's job that succeeded after it (run/adopt.py): its staged outputs checked against
        the digests the job side reported, then published and recorded as any success. False when they
        cannot be (missing, changed, not as reported): the instance runs again."""
        reported = status.metrics.get("outputs") or []
        files = {e["path"]: e["sha256"] for e in reported if e.get("type", "file") == "file" and e.get("sha256")}
        trees = {e["path"]: output_digest(e) for e in reported if e.get("type") == "tree"}
        if not all(path in active.outputs.final for path in (*files, *trees)):
            self.ctx.events.note(f"{active.inst.id}: the adopted job reported outputs it does not declare; "
                                 "it runs again")
            return False
        try:
            collected = collect_outputs(self.tree, active.outputs, {**files, **active.inst.step.expect})
        except OutputFailure as exc:
            self.ctx.events.note(f"{active.inst.id}: the adopted job's outputs are not collected ({exc.message}); "
                                 "it runs again")
            return False
        if any(collected[path][0] != digest for path, digest in trees.items()):
            self.ctx.events.note(f"{active.inst.id}: the adopted job's outputs differ from what it reported; "
                                 "it runs again")
            return False
        self.succeeded(active, collected, self.metrics(active, status, None), status=status)
        return True

    def outcome(self, active: Any, status: JobStatus) -> tuple[str | None, str]:
        failure, message = status.failure, status.message
        if active.timed_out:
            failure, message = TIMEOUT, f"time limit of {active.resources.time} s exceeded"
        elif failure is not None and self.state.stopping and failure in (CANCELLED, "signal"):
            failure, message = CANCELLED, "stopped by the user"
        return failure, message

    @staticmethod
    def metrics(active: Any, status: JobStatus, failure: str | None) -> dict[str, Any]:
        return {**status.metrics, "requested": active.resources.to_record(), "failure": failure,
                "backend": active.backend.name, "job": active.handle.job_id}

    def succeeded(self, active: Any, collected: dict[str, Any], metrics: dict[str, Any], *,
                  status: JobStatus | None = None, streams: dict[str, Any] | None = None,
                  complete: bool = True) -> None:
        """A successful attempt: its results line (buffered, on disk before the journal's ``done``)
        and the journal's ``attempt`` and ``done``; its records are the run's, not a folder of its own."""
        inst = active.inst
        digests = {path: digest for path, (digest, _) in collected.items()}
        for path, (digest, st) in collected.items():
            if not digest.startswith("tree:"):
                self.hashes.remember(path, digest, st)
        self.records.succeeded(active, status, metrics, collected, active.staging)
        parts = self.state.parts[inst.id]
        self.journal.append("attempt", id=inst.id, attempt=active.attempt, status="ok", metrics=metrics)
        self.journal.append("done", id=inst.id, step=inst.step.name, key=parts.key, parts=parts.to_record(),
                            outputs=digests, start=metrics.get("start"), end=metrics.get("end"),
                            attempts=active.attempt, dir=self.ctx.run_rel,
                            **({"streams": streams} if streams else {}))
        result = InstanceResult(inst.id, "done", attempts=active.attempt, dir=Path(self.ctx.run_dir),
                                command=active.command, backend=active.backend.name, job_id=active.handle.job_id)
        self.state.results[inst.id] = result
        self.ctx.events.finished(result)
        if complete:
            self.frontier.complete(inst.id)

    def record_failed_attempt(self, iid: str, attempt: int, failure: str, message: str, *, resources: Any = None,
                              metrics: dict[str, Any] | None = None, status: JobStatus | None = None,
                              adir: rundir.AttemptDir | None = None) -> str:
        """Journal a failed attempt and keep it: its script, streams and metrics under
        ``failed/<inst-dir>/attempt-<n>/`` and its results line. Returns the message as recorded
        (secrets masked)."""
        ctx = self.ctx
        message = ctx.redactor(message)
        metrics = metrics or {"requested": resources.to_record(), "failure": failure}
        self.journal.append("attempt", id=iid, attempt=attempt, status="failed", failure=failure,
                            message=message, exit=status.exit_code if status else None,
                            signal=status.signal if status else None, metrics=metrics)
        inst = ctx.dag.instances[iid]
        kept = self.records.failed(inst, attempt, attempt_dir=str(adir.path) if adir is not None else None,
                                   failure=failure, message=message, metrics=metrics, status=status,
                                   backend=metrics.get("backend") or ctx.profile_for(inst).backend,
                                   requested=resources.to_record() if resources is not None else None)
        self.kept[iid] = Path(kept).parent
        return message

    def retry_later(self, key: str, attempt: int, failure: str, message: str, *, retries: int) -> bool:
        """Queue attempt ``attempt + 1`` of ``key`` (an instance or a unit's lead) if the policy allows."""
        delay = self.retry.after(attempt, failure, retries=retries, stopping=self.state.stopping)
        if delay is None:
            return False
        self.state.delayed.append((time.monotonic() + delay, key, attempt + 1))
        self.ctx.events.retrying(key, attempt + 1, failure, message, delay)
        return True

    def attempt_failed(self, inst, attempt, failure, message, res, adir, *, metrics=None, status=None, command=""):
        message = self.record_failed_attempt(inst.id, attempt, failure, message, resources=res, metrics=metrics,
                                             status=status, adir=adir)
        if self.retry_later(inst.id, attempt, failure, message, retries=inst.step.retries):
            return
        self.fail(inst.id, failure, message, attempts=attempt, dir=self.kept.get(inst.id), command=command,
                  job_id=status.handle.job_id if status else None)

    def fail(self, iid: str, failure: str, message: str, *, attempts: int, dir: Path | None = None,
             command: str = "", job_id: str | None = None) -> None:
        ctx, state = self.ctx, self.state
        inst = ctx.dag.instances[iid]
        message = ctx.redactor(message)
        self.journal.append("failed", id=iid, step=inst.step.name, failure=failure, message=message,
                            attempts=attempts, dir=os.path.relpath(dir, ctx.root) if dir else None)
        result = InstanceResult(iid, "failed", failure=failure, message=message, attempts=attempts, dir=dir,
                                command=command, backend=ctx.profile_for(inst).backend, job_id=job_id)
        state.results[iid] = result
        state.failed_any = True
        ctx.events.finished(result)
        if not ctx.options.keep_going and failure != CANCELLED:
            state.stopping = True

    def skip(self, iid: str, parts: Any = None) -> None:
        """Up to date: not run. Journaled in batches (one record per loop turn), so `status` can say cached;
        its instance line names the run its results rest on, and its outputs count as the run's."""
        inst = self.ctx.dag.instances[iid]
        done = self.done.get(iid) or {}
        self.records.planned(inst, parts, self.ctx.profile_for(inst), resources_for(inst.step, 1),
                             cached_from=done.get("run"), outputs=done.get("outputs") or {})
        result = self.state.results[iid] = InstanceResult(iid, "skipped")
        self.ctx.events.finished(result)
        self._skipped.append(iid)

    def journal_skips(self) -> None:
        if self._skipped:
            self.journal.append("skipped", ids=self._skipped)
            self._skipped = []

    def not_run(self, iid: str) -> None:
        if iid not in self.state.results:
            self.state.results[iid] = InstanceResult(iid, "not-run")
