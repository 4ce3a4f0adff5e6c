"""The attempt builder: an attempt's directory, outputs, script, environment and Job; then its submission.

An attempt comes back as its :class:`~repropack.run.state.Active` once submitted, or as
:class:`Unstarted` (why, with what it asked for) when it could not be prepared or submitted.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repropack.backends.base import Backend, Job, JobHandle
from repropack.errors import BackendError
from repropack.run import rundir
from repropack.run.attempt import (
    SYSTEM_PATH,
    command_outputs,
    host_path,
    mount_ids,
    plan_outputs,
    render_script,
    resources_for,
    step_env,
)
from repropack.run.safepath import UnsafePath
from repropack.run.state import Active, start_clock
from repropack.run.undeclared import Snapshot


@dataclass
class Unstarted:
    """An attempt that could not be prepared or submitted."""

    message: str
    resources: Any
    attempt_dir: rundir.AttemptDir | None  # None: nothing of it is kept but its records


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
    staging: dict[str, Any]  # what re-renders the exact command from the declared one (records)


class AttemptBuilder:
    def __init__(self, ctx: Any, state: Any, journal: Any, records: Any, tree: Any, slots: Any):
        self.ctx, self.state, self.journal, self.records, self.tree, self.slots = ctx, state, journal, records, tree, slots
        self.snapshot: Snapshot | None = None  # the project before the first host step, for `undeclared`
        self._envs: dict[Any, dict[str, str]] = {}  # step environments by (profile, environment, cpus, slot)
        self._declared: dict[str, Any] = {}  # instance -> its instance line, written for an adopted job

    def start_many(self, items: list[tuple[str, int, dict[str, str] | None, str | None]]) -> list[Any]:
        """Submit attempts (iid, attempt, pipe paths, unit), one ``submit_many`` per backend.

        Each comes back as its Active, or as Unstarted. A ``submit`` record (the intent)
        reaches the journal before its job can exist.
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
        """The attempt's slot, outputs and Job; or Unstarted if that failed.

        The attempt runs in a reusable slot folder (its script, streams, scratch and staged outputs):
        nothing is made per instance but its records' lines."""
        ctx = self.ctx
        inst = ctx.dag.instances[iid]
        profile = ctx.profile_for(inst)
        res = resources_for(inst.step, attempt)
        slot = None
        adir = None
        try:
            slot = self.slots.take()
            adir = rundir.AttemptDir(slot, attempt)
            outputs = plan_outputs(inst, os.path.relpath(slot, ctx.root))
            outputs.prepare(self.tree)
            inputs_list = self.records.inputs_list(inst) if "{inputs:list}" in inst.step.run else None
            command = inst.command(attempt=attempt, outputs=command_outputs(inst, outputs, pipe_paths or {}),
                                   inputs_list=inputs_list, cpus=res.cpus)
            # held until the job is submitted (its mounts made), so no other folder can take the inode
            mounts = outputs.writable_dirs(self.tree) if profile.runtime != "host" else []
            try:
                job = self._job(inst, profile, attempt, adir, mounts, res, command, slot, outputs)
                if not ctx.capabilities(profile).shared_filesystem:  # the backend stages what the step reads
                    reads = (*inst.inputs, *inst.sources, *((inputs_list,) if inputs_list else ()))
                    job = replace(job, inputs=tuple(dict.fromkeys(reads)), profile=profile.name)
                if profile.runtime == "host" and self.snapshot is None:
                    self.snapshot = Snapshot.take(ctx.root)
                backend = ctx.backends.for_profile(profile)
            except BaseException:
                _close(mounts)
                raise
            declared = None
            if attempt == 1:  # its instance line, once (an adopted job not collected already wrote it)
                declared = self._declared.pop(iid, None) or self.records.planned(
                    inst, self.state.parts.get(iid), profile, res, image=job.image)
            words = {**dict(zip(outputs.final, outputs.written)), **(pipe_paths or {})}
            staging = self.records.staging(inst, res.cpus, command, words, declared=declared)
        except (BackendError, OSError, UnsafePath) as exc:
            if slot is not None:
                self.slots.give_back(slot)
            return Unstarted(str(exc), res, None)
        except Exception:
            if slot is not None:
                self.slots.give_back(slot)
            raise
        return _Prepared(inst, attempt, profile, job, adir, outputs, res, command, slot, unit, backend, mounts,
                         staging)

    def _submitted(self, prep: _Prepared, result: JobHandle | Exception) -> Any:
        _close(prep.mounts)
        if isinstance(result, Exception):
            if prep.slot is not None:
                self.slots.give_back(prep.slot)
            return Unstarted(str(result), prep.res, None)
        handle, backend, res, state = result, prep.backend, prep.res, self.state
        timed = bool(res.time) and not self.ctx.capabilities(prep.profile).enforces_time
        active = Active(prep.inst, prep.attempt, handle, backend, time.monotonic(), None, prep.adir, prep.outputs,
                        res, prep.command, slot=prep.slot, unit=prep.unit, timed=timed, staging=prep.staging,
                        runtime=prep.profile.runtime)
        if timed and handle.started is not None:
            start_clock(active, handle.started)
        state.active[handle.job_id] = active
        if state.stopping:  # a Ctrl-C arrived while this job was being submitted: it missed the cancel
            backend.cancel([handle], force=state.interrupts > 1)
        # slot and key: what a restarted runner needs to collect this job if it outlives the runner (run/adopt.py)
        parts = state.parts.get(prep.inst.id)
        self.journal.append("start", id=prep.inst.id, attempt=prep.attempt, time=time.time(), backend=backend.name,
                            runtime=prep.profile.runtime, job=handle.job_id, req=res.to_record(),
                            slot=os.path.relpath(prep.slot, self.ctx.root) if prep.slot is not None else None,
                            key=parts.key if parts is not None else None)
        self.ctx.events.started(prep.inst.id, prep.attempt)
        return active

    def adopted(self, iid: str, attempt: int, slot: Path, handle: JobHandle, backend: Backend) -> Active:
        """The Active of a killed run's attempt, rebuilt as :meth:`_prepare` made it (its staged outputs in
        that run's slot), so the finisher can collect it; nothing is made or submitted."""
        ctx = self.ctx
        inst = ctx.dag.instances[iid]
        profile = ctx.profile_for(inst)
        res = resources_for(inst.step, attempt)
        outputs = plan_outputs(inst, os.path.relpath(slot, ctx.root))
        inputs_list = self.records.inputs_list(inst) if "{inputs:list}" in inst.step.run else None
        command = inst.command(attempt=attempt, outputs=command_outputs(inst, outputs, {}),
                               inputs_list=inputs_list, cpus=res.cpus)
        image = ctx.environments.image(profile, profile.runtime) if profile.runtime != "host" else None
        declared = self._declared[iid] = self.records.planned(inst, self.state.parts.get(iid), profile, res,
                                                              image=image)
        staging = self.records.staging(inst, res.cpus, command, dict(zip(outputs.final, outputs.written)),
                                       declared=declared)
        return Active(inst, attempt, handle, backend, time.monotonic(), None, rundir.AttemptDir(slot, attempt),
                      outputs, res, command, staging=staging, runtime=profile.runtime)

    def _job(self, inst, profile, attempt, adir, mounts, res, command, slot, outputs) -> Job:
        ctx, runtime = self.ctx, profile.runtime
        prefix = ctx.environments.host_prefix(inst.step.environment) if runtime == "host" else None
        marker = (profile.name, runtime, inst.step.environment, res.cpus, slot)
        env = self._envs.get(marker)
        if env is None:  # the same for every instance of a step in one slot: built once, never changed
            path = host_path(prefix) if runtime == "host" else SYSTEM_PATH
            env = step_env(cpus=res.cpus, home=slot / "home", tmp=slot / "tmp", run_id=ctx.run_id, path=path,
                           passthrough=profile.env)
            if prefix is not None:
                env["CONDA_PREFIX"] = str(prefix)
                if (prefix / "pyvenv.cfg").exists():
                    env["VIRTUAL_ENV"] = str(prefix)
            self._envs[marker] = env
        image = ctx.environments.image(profile, runtime) if runtime != "host" else None
        flags = profile.apptainer_flags if runtime == "apptainer" else profile.docker_flags
        writable = (slot, *(path for path, _ in mounts))
        return Job(instance_id=inst.id, attempt=attempt, run_id=ctx.run_id, project=ctx.root,
                   attempt_dir=adir.path, script=render_script(inst.id, attempt, command), env=env,
                   resources=res, runtime=runtime, image=image, env_prefix=prefix, writable=writable,
                   writable_ids=mount_ids((slot,), mounts) if runtime != "host" else (),
                   runtime_flags=tuple(flags), labels=ctx.labels, step=inst.step.name,
                   options=profile.options, outputs=tuple(zip(outputs.final, outputs.written)))


def _close(mounts: list[tuple[Path, int]]) -> None:
    for _, fd in mounts:
        os.close(fd)
