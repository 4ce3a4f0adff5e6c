"""The runner's main loop: ready instances, attempts, retries, time limits, stops."""

from __future__ import annotations

import os
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.backends.base import CANCELLED, LOST, TIMEOUT, Backend, Job, JobHandle, JobState, JobStatus
from repropack.errors import BackendError
from repropack.run import rundir
from repropack.run.attempt import (
    SYSTEM_PATH,
    OutputFailure,
    collect_outputs,
    command_outputs,
    host_path,
    mount_ids,
    plan_outputs,
    render_script,
    resources_for,
    step_env,
)
from repropack.run.checksums import format_checksums
from repropack.run.safepath import ProjectTree, UnsafePath
from repropack.run.scheduler import Demand
from repropack.run.state import Active, InstanceResult, retry_delay
from repropack.run.undeclared import Snapshot
from repropack.run.units import UnitMixin, UnitState

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a time limit passes
IDLE_WAIT, STOP_WAIT = 0.5, 0.1  # longest sleep of the loop while running / while stopping
POLL_RETRIES = 3  # a failing poll is retried this often (with back-off); then its jobs are lost


class Executor(UnitMixin):
    def __init__(self, runner: Any, planner: Any, journal: Any, hashes: Any, scheduler: Any, supervisor: Any):
        self.r = runner
        self.dag = runner.dag
        self.root: Path = runner.root
        self.planner = planner
        self.journal = journal
        self.hashes = hashes
        self.scheduler = scheduler
        self.supervisor = supervisor
        self.failed_any = False
        self.order = {iid: n for n, iid in enumerate(self.dag.instances)}
        instances = self.dag.instances
        # Instances joined by pipes form a unit, scheduled as one under its first member (the lead).
        self.units = runner.units
        self.unit_state: dict[str, UnitState] = {}
        lead = {iid: members[0] for iid, members in self.units.items()}
        edges: dict[str, set[str]] = {lead.get(i, i): set() for i in instances}
        for iid, inst in instances.items():
            # deps outside the (selected) DAG are not run here: their outputs must already exist
            edges[lead.get(iid, iid)] |= {lead.get(d, d) for d in inst.deps if d in instances} - {lead.get(iid, iid)}
        self.waiting = {iid: len(deps) for iid, deps in edges.items()}
        self.children: dict[str, list[str]] = defaultdict(list)
        for iid, deps in edges.items():
            for dep in deps:
                self.children[dep].append(iid)
        self.ready: deque[str] = deque(i for i, n in self.waiting.items() if n == 0)
        self.parts: dict[str, Any] = {}
        self._skipped: list[str] = []  # up-to-date instances not yet journaled
        self.snapshot: Snapshot | None = None
        self._attempt_of: dict[str, int] = {}  # the attempt a re-queued instance starts next
        self.writer = rundir.Writer()
        self.tree = ProjectTree(self.root)  # outputs are reached from here, no link leading outside followed
        self.slots = rundir.ScratchSlots(rundir.run_root(self.root, runner.run_id))
        self._run_dir = str(rundir.run_root(self.root, runner.run_id))
        self._run_rel = os.path.relpath(self._run_dir, self.root)
        self._envs: dict[Any, dict[str, str]] = {}  # step environments by (profile, environment, cpus, slot)
        self._cadence: dict[str, float] = {}  # backend name -> seconds between its polls now
        self._next_poll: dict[str, float] = {}  # backend name -> when it may be polled again
        self._poll_errors: dict[str, int] = {}  # backend name -> polls failed in a row

    # -- loop ----------------------------------------------------------------------------
    def loop(self) -> None:
        while True:
            self._resolve_ready()
            self._release_delayed()
            if not self.r.stopping:
                single = []
                for iid, _ in self.scheduler.take():
                    if iid in self.units:
                        self._launch_unit(iid, self._attempt_of.get(iid, 1))
                    else:
                        single.append((iid, self._attempt_of.get(iid, 1)))
                if single:
                    self._launch(single)
            if not self.r.active and not self.ready and not self.r._delayed and (not len(self.scheduler) or self.r.stopping):
                break
            self._poll()
            self._watch_units()
            self._enforce_deadlines()
            self._journal_skips()
            self.journal.flush()
            self.supervisor.flush()
        for iid in self.scheduler.drop_ready():
            self._not_run(iid)

    def _resolve_ready(self) -> None:
        while self.ready:
            iid = self.ready.popleft()
            if self.r.stopping:
                self._not_run(iid)
                continue
            if iid in self.units:
                self._resolve_unit(iid)
                continue
            inst = self.dag.instances[iid]
            decision = self.planner.decide(inst)
            if decision.missing:
                path = decision.missing[0]
                maker = self.dag.producers.get(path)
                why = f", which {maker} should have made" if maker else " (no step makes it)"
                self._fail(iid, "missing-input", f"missing input {path}{why}", attempts=0)
                continue
            if not decision.run:
                self._skip(iid)
                self._complete(iid)
                continue
            self.parts[iid] = decision.parts
            self.scheduler.push(self.order[iid], iid, self.r._demand(inst, 1))

    def _release_delayed(self) -> None:
        if not self.r._delayed:
            return
        now = time.monotonic()
        keep = []
        for due, iid, attempt in self.r._delayed:
            if self.r.stopping:
                for member in self.units.get(iid, (iid,)):
                    self._fail(member, CANCELLED, "stopped before its retry", attempts=attempt - 1)
            elif due <= now:
                demand = self._demand(iid, attempt)
                why = self.scheduler.never_fits(demand)
                if why:
                    for member in self.units.get(iid, (iid,)):
                        self._fail(member, "resources", f"attempt {attempt} {why}", attempts=attempt - 1)
                    continue
                self._attempt_of[iid] = attempt
                self.scheduler.push(self.order[iid], iid, demand)
            else:
                keep.append((due, iid, attempt))
        self.r._delayed = keep

    def _poll(self) -> None:
        """Poll each backend at its own cadence; block in its poll or sleep, never spin."""
        now = time.monotonic()
        wait = self._next_event(now)
        groups: dict[Backend, list[JobHandle]] = {}
        for active in self.r.active.values():
            groups.setdefault(active.backend, []).append(active.handle)
        changed = waited = False
        for backend, handles in groups.items():
            name = backend.name
            if self._next_poll.get(name, 0.0) > now:
                continue
            cadence = self._cadence.get(name, backend.poll_interval)
            asked = 0.0 if changed or waited else min(wait, cadence)  # one backend per round may block
            waited = waited or asked > 0
            began = time.monotonic()
            try:
                statuses = backend.poll(handles, wait=asked)
            except BackendError as exc:
                self._poll_failed(backend, handles, exc)
                changed = changed or name not in self._poll_errors  # its jobs were just lost
                continue
            self._poll_errors.pop(name, None)
            done = self._take_statuses(statuses)
            changed = changed or bool(done)
            # a poll that blocked as long as it was asked may be called again at once (local);
            # one that answered sooner waits out its cadence, which doubles while nothing ends
            blocked = time.monotonic() - began >= asked
            self._cadence[name] = backend.poll_interval if done else min(backend.poll_max_interval, cadence * 2)
            self._next_poll[name] = began if done or blocked else began + cadence
        if not changed:
            due = min([now + wait, *(self._next_poll.get(b.name, now) for b in groups)])
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    def _next_event(self, now: float) -> float:
        """Seconds until the loop has something to do of its own (a retry due, a time limit)."""
        wait = IDLE_WAIT if not self.r.stopping else STOP_WAIT
        for due, _, _ in self.r._delayed:
            wait = min(wait, max(0.0, due - now))
        for active in self.r.active.values():
            for moment in (active.deadline, active.kill_at):
                if moment is not None:
                    wait = min(wait, max(0.0, moment - now))
        return wait

    def _take_statuses(self, statuses: dict[str, JobStatus]) -> list[Any]:
        """Finish the attempts that ended; start the clock of those that began running."""
        done = []
        for job_id, status in statuses.items():
            active = self.r.active.get(job_id)
            if active is None:
                continue
            if status.state.terminal:
                done.append(active)
            elif status.state is JobState.RUNNING and active.timed and active.deadline is None:
                self._start_clock(active, status.started)
        for active in done:
            self._finish(active, statuses[active.handle.job_id])
        if done:
            done[0].backend.forget(a.handle for a in done)
        return done

    def _poll_failed(self, backend: Backend, handles: list[JobHandle], exc: BackendError) -> None:
        """Retry a failing poll with back-off; after POLL_RETRIES more failures its jobs are lost."""
        name = backend.name
        failures = self._poll_errors[name] = self._poll_errors.get(name, 0) + 1
        if failures <= POLL_RETRIES:
            self.r.events.note(f"{name}: poll failed ({failures} of {POLL_RETRIES + 1} tries): {exc}")
            delay = min(backend.poll_max_interval, backend.poll_interval * 2 ** failures)
            self._next_poll[name] = time.monotonic() + delay
            return
        del self._poll_errors[name]
        message = f"lost: the {name} backend could not be polled {failures} times in a row: {exc}"
        try:
            backend.cancel(handles, force=True)  # it may still run; it must not run on unwatched
        except BackendError:
            pass
        lost = [self.r.active[h.job_id] for h in handles if h.job_id in self.r.active]
        for active in lost:
            self._finish(active, JobStatus(active.handle, JobState.FAILED, failure=LOST, message=message))
        try:
            backend.forget(handles)
        except BackendError:
            pass

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for active in list(self.r.active.values()):
            if active.deadline is not None and now >= active.deadline and not active.timed_out:
                active.timed_out = True
                active.kill_at = now + KILL_GRACE
                active.backend.cancel([active.handle])
            elif active.kill_at is not None and now >= active.kill_at:
                active.kill_at = None
                active.backend.cancel([active.handle], force=True)

    # -- launching -----------------------------------------------------------------------
    def _demand(self, iid: str, attempt: int) -> Demand:
        return Demand.together([self.r._demand(self.dag.instances[m], attempt) for m in self.units.get(iid, (iid,))])

    def _launch(self, batch: list[tuple[str, int]]) -> None:
        for (iid, attempt), started in zip(batch, self._start_many([(iid, attempt, None, None) for iid, attempt in batch])):
            if isinstance(started, tuple):
                message, res, adir = started
                self.scheduler.release(iid)
                self._attempt_failed(self.dag.instances[iid], attempt, "submit", message, res, adir)

    def _start_many(self, items: list[tuple[str, int, dict[str, str] | None, str | None]]) -> list[Any]:
        """Submit attempts (iid, attempt, pipe paths, unit), one ``submit_many`` per backend.

        Each comes back as its Active, or (message, resources, attempt dir) if it could not start.
        A ``submit`` record (the intent) reaches the journal before its job can exist.
        """
        out: list[Any] = [self._prepare(*item) for item in items]
        by_backend: dict[Backend, list[int]] = {}
        for n, got in enumerate(out):
            if isinstance(got, _Prepared):
                by_backend.setdefault(got.backend, []).append(n)
        for backend, indexes in by_backend.items():
            for n in indexes:
                self.journal.append("submit", id=out[n].inst.id, attempt=out[n].attempt, time=time.time(),
                                    backend=backend.name)
            self.journal.flush()
            for n, result in zip(indexes, backend.submit_many([out[n].job for n in indexes])):
                out[n] = self._submitted(out[n], result)
        return out

    def _prepare(self, iid: str, attempt: int, pipe_paths: dict[str, str] | None, unit: str | None) -> Any:
        """The attempt's directory, outputs and Job; or (message, resources, attempt dir) if that failed."""
        inst = self.dag.instances[iid]
        profile = self.r.profile_for(inst)
        name = rundir.instance_dirname(iid)
        idir = rundir.InstanceDir(Path(f"{self._run_dir}/{name}"))  # strings: Path joins cost per instance
        adir = rundir.AttemptDir(Path(f"{self._run_dir}/{name}/attempt-{attempt}"), attempt)
        res = resources_for(inst.step, attempt)
        outputs = plan_outputs(inst, f"{self._run_rel}/{name}/attempt-{attempt}")
        slot = None
        try:
            if attempt == 1:
                try:
                    os.mkdir(idir.path)
                except FileExistsError:
                    pass
            os.mkdir(adir.path)
            if attempt == 1:
                self.writer.submit(idir.write_instance, self._instance_record(inst, profile))
            outputs.prepare(self.tree)
            slot = self.slots.take()
            inputs_list = None
            if "{inputs:list}" in inst.step.run:
                idir.inputs_list.write_text("".join(f"{p}\n" for p in inst.inputs), encoding="utf-8")
                inputs_list = os.path.relpath(idir.inputs_list, self.root)
            command = inst.command(attempt=attempt, outputs=command_outputs(inst, outputs, pipe_paths or {}),
                                   inputs_list=inputs_list, cpus=res.cpus)
            # held until the job is submitted (its mounts made), so no other folder can take the inode
            mounts = outputs.writable_dirs(self.tree) if profile.runtime != "host" else []
            try:
                job = self._job(inst, profile, attempt, adir, idir, mounts, res, command, slot, outputs)
                if profile.runtime == "host" and self.snapshot is None:
                    self.snapshot = Snapshot.take(self.root)
                backend = self.r.backend_for(profile, self.supervisor)
            except BaseException:
                _close(mounts)
                raise
        except (BackendError, OSError, UnsafePath) as exc:
            if slot is not None:
                self.slots.give_back(slot)
            return str(exc), res, adir
        except Exception:
            if slot is not None:
                self.slots.give_back(slot)
            raise
        return _Prepared(inst, attempt, profile, job, adir, outputs, res, command, slot, unit, backend, mounts)

    def _submitted(self, prep: _Prepared, result: JobHandle | Exception) -> Any:
        _close(prep.mounts)
        if isinstance(result, Exception):
            if prep.slot is not None:
                self.slots.give_back(prep.slot)
            return str(result), prep.res, prep.adir
        handle, backend, res = result, prep.backend, prep.res
        timed = bool(res.time) and not self.r.capabilities(prep.profile).enforces_time
        active = Active(prep.inst, prep.attempt, handle, backend, time.monotonic(), None, prep.adir, prep.outputs,
                         res, prep.command, slot=prep.slot, unit=prep.unit, timed=timed)
        if timed and handle.started is not None:
            self._start_clock(active, handle.started)
        self.r.active[handle.job_id] = active
        if self.r.stopping:  # a Ctrl-C arrived while this job was being submitted: it missed the cancel
            backend.cancel([handle], force=self.r.interrupts > 1)
        self.journal.append("start", id=prep.inst.id, attempt=prep.attempt, time=time.time(), backend=backend.name,
                            runtime=prep.profile.runtime, job=handle.job_id, req=res.to_record())
        self.r.events.started(prep.inst.id, prep.attempt)
        return active

    @staticmethod
    def _start_clock(active: Any, started: float | None) -> None:
        """The runner's time limit counts from when the job began running, not from its submission."""
        ran = max(0.0, time.time() - started) if started is not None else 0.0
        active.deadline = time.monotonic() - ran + active.resources.time

    def _job(self, inst, profile, attempt, adir, idir, mounts, res, command, slot, outputs) -> Job:
        runtime = profile.runtime
        prefix = self.r.environments.host_prefix(inst.step.environment) if runtime == "host" else None
        marker = (profile.name, runtime, inst.step.environment, res.cpus, slot)
        env = self._envs.get(marker)
        if env is None:  # the same for every instance of a step in one slot: built once, never changed
            path = host_path(prefix) if runtime == "host" else SYSTEM_PATH
            env = step_env(cpus=res.cpus, home=slot / "home", tmp=slot / "tmp", run_id=self.r.run_id, path=path,
                           passthrough=profile.env)
            if prefix is not None:
                env["CONDA_PREFIX"] = str(prefix)
                if (prefix / "pyvenv.cfg").exists():
                    env["VIRTUAL_ENV"] = str(prefix)
            self._envs[marker] = env
        image = self.r.environments.image(profile, runtime) if runtime != "host" else None
        flags = profile.apptainer_flags if runtime == "apptainer" else profile.docker_flags
        writable = (idir.path, slot, *(path for path, _ in mounts))
        return Job(instance_id=inst.id, attempt=attempt, run_id=self.r.run_id, project=self.root,
                   attempt_dir=adir.path, script=render_script(inst.id, attempt, command), env=env,
                   resources=res, runtime=runtime, image=image, env_prefix=prefix, writable=writable,
                   writable_ids=mount_ids(writable[:2], mounts) if runtime != "host" else (),
                   runtime_flags=tuple(flags), labels=self.r.labels(), step=inst.step.name,
                   options=profile.options, outputs=tuple(zip(outputs.final, outputs.written)))

    def _instance_record(self, inst: Any, profile: Any) -> dict[str, Any]:
        return {"id": inst.id, "step": inst.step.name, "wildcards": dict(inst.wildcards), "run": self.r.run_id,
                "key": self.parts[inst.id].key if inst.id in self.parts else None,
                "inputs": list(inst.inputs) if len(inst.inputs) <= 1000 else len(inst.inputs),
                "outputs": list(inst.outputs), "profile": profile.name, "runtime": profile.runtime,
                "backend": profile.backend, "retries": inst.step.retries}

    # -- finishing -----------------------------------------------------------------------
    def _finish(self, active: Any, status: JobStatus) -> None:
        del self.r.active[active.handle.job_id]
        if active.slot is not None:
            self.slots.give_back(active.slot)
        if active.unit is not None:
            self._finish_member(active, status)
            return
        self.scheduler.release(active.inst.id)
        failure, message = self._outcome(active, status)
        metrics = self._metrics(active, status, failure)
        collected: dict[str, Any] = {}
        if failure is None:
            try:
                collected = collect_outputs(self.tree, active.outputs, active.inst.step.expect)
            except OutputFailure as exc:
                failure, message = exc.failure, exc.message
        metrics["failure"] = failure
        self.writer.submit(active.attempt_dir.write_result, status.exit_code, metrics)
        if failure is not None:
            self._attempt_failed(active.inst, active.attempt, failure, message, active.resources,
                                 active.attempt_dir, metrics=metrics, status=status, command=active.command)
            return
        self._succeeded(active, collected, metrics)

    def _outcome(self, active: Any, status: JobStatus) -> tuple[str | None, str]:
        failure, message = status.failure, status.message
        if active.timed_out:
            failure, message = TIMEOUT, f"time limit of {active.resources.time} s exceeded"
        elif failure is not None and self.r.stopping and failure in (CANCELLED, "signal"):
            failure, message = CANCELLED, "stopped by the user"
        return failure, message

    def _metrics(self, active: Any, status: JobStatus, failure: str | None) -> dict[str, Any]:
        return {**status.metrics, "requested": active.resources.to_record(), "failure": failure,
                "backend": active.backend.name, "job": active.handle.job_id}

    def _succeeded(self, active: Any, collected: dict[str, Any], metrics: dict[str, Any], *,
                   streams: dict[str, Any] | None = None, complete: bool = True) -> None:
        inst = active.inst
        digests = {path: digest for path, (digest, _) in collected.items()}
        for path, (digest, st) in collected.items():
            if not digest.startswith("tree:"):
                self.hashes.remember(path, digest, st)
        idir = rundir.InstanceDir(active.attempt_dir.path.parent)
        self.writer.submit(rundir.write_file, f"{idir.path}/{rundir.CHECKSUMS}", format_checksums(digests).encode())
        parts = self.parts[inst.id]
        self.journal.append("attempt", id=inst.id, attempt=active.attempt, status="ok", metrics=metrics)
        self.journal.append("done", id=inst.id, step=inst.step.name, key=parts.key, parts=parts.to_record(),
                            outputs=digests, start=metrics.get("start"), end=metrics.get("end"),
                            attempts=active.attempt, dir=f"{self._run_rel}/{idir.path.name}",
                            **({"streams": streams} if streams else {}))
        result = InstanceResult(inst.id, "done", attempts=active.attempt, dir=idir.path, command=active.command,
                               backend=active.backend.name, job_id=active.handle.job_id)
        self.r.results[inst.id] = result
        self.r.events.finished(result)
        if complete:
            self._complete(inst.id)

    def _attempt_failed(self, inst, attempt, failure, message, res, adir, *, metrics=None, status=None, command=""):
        exit_code = status.exit_code if status else None
        message = self.r.redactor(message)
        self.journal.append("attempt", id=inst.id, attempt=attempt, status="failed", failure=failure,
                            message=message, exit=exit_code, signal=status.signal if status else None,
                            metrics=metrics or {"requested": res.to_record(), "failure": failure})
        if metrics is None:
            adir.path.mkdir(parents=True, exist_ok=True)
            adir.write_result(None, {"requested": res.to_record(), "failure": failure, "message": message})
        if attempt <= inst.step.retries and not self.r.stopping and failure not in (CANCELLED, "submit"):
            delay = retry_delay(self.r.options, attempt + 1)
            self.r._delayed.append((time.monotonic() + delay, inst.id, attempt + 1))
            self.r.events.retrying(inst.id, attempt + 1, failure, message, delay)
            return
        self._fail(inst.id, failure, message, attempts=attempt, dir=adir.path.parent, command=command,
                   job_id=status.handle.job_id if status else None)

    def _fail(self, iid: str, failure: str, message: str, *, attempts: int, dir: Path | None = None,
              command: str = "", job_id: str | None = None) -> None:
        inst = self.dag.instances[iid]
        message = self.r.redactor(message)
        self.journal.append("failed", id=iid, step=inst.step.name, failure=failure, message=message,
                            attempts=attempts, dir=os.path.relpath(dir, self.root) if dir else None)
        result = InstanceResult(iid, "failed", failure=failure, message=message, attempts=attempts, dir=dir,
                               command=command, backend=self.r.profile_for(inst).backend, job_id=job_id)
        self.r.results[iid] = result
        self.failed_any = True
        self.r.events.finished(result)
        if not self.r.options.keep_going and failure != CANCELLED:
            self.r.stopping = True

    def _skip(self, iid: str) -> None:
        """Up to date: not run. Journaled in batches (one record per loop turn), so `status` can say cached."""
        self.r.results[iid] = InstanceResult(iid, "skipped")
        self.r.events.finished(self.r.results[iid])
        self._skipped.append(iid)

    def _journal_skips(self) -> None:
        if self._skipped:
            self.journal.append("skipped", ids=self._skipped)
            self._skipped = []

    def _not_run(self, iid: str) -> None:
        if iid not in self.r.results:
            self.r.results[iid] = InstanceResult(iid, "not-run")

    def _complete(self, iid: str) -> None:
        for child in self.children.get(iid, ()):
            self.waiting[child] -= 1
            if self.waiting[child] == 0:
                self.ready.append(child)

    # -- end -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop whatever still runs (an exception escaped the loop) and release backends."""
        for backend in self.r._backends.values():
            handles = [a.handle for a in self.r.active.values() if a.backend is backend]
            if handles:
                backend.cancel(handles, force=True)
            backend.close()
        for iid in self.dag.instances:
            self._not_run(iid)
        self._journal_skips()
        not_run = [iid for iid, result in self.r.results.items() if result.status == "not-run"]
        if not_run:  # selected but never started (an upstream failed, or the run was stopped)
            self.journal.append("not-run", ids=not_run)
        self.writer.close()
        self.slots.remove()
        self.tree.close()
        for error in self.writer.errors:
            self.r.events.note(f"warning: could not write a run-directory file: {error}")

    def undeclared(self) -> list[str]:
        if self.snapshot is None:
            return []
        declared = set(self.dag.producers) | {d.path for d in self.r.manifest.data.values()}
        return self.snapshot.new_files(self.root, declared)


@dataclass
class _Prepared:
    """An attempt ready to submit."""

    inst: Any
    attempt: int
    profile: Any
    job: Job
    adir: rundir.AttemptDir
    outputs: Any
    res: Any
    command: str
    slot: Path | None
    unit: str | None
    backend: Backend
    mounts: list[tuple[Path, int]]  # the checked writable folders and their descriptors


def _close(mounts: list[tuple[Path, int]]) -> None:
    for _, fd in mounts:
        os.close(fd)

