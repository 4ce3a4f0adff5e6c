"""The runner's main loop: ready instances decided and started, polled, finished, retried, stopped.

Its parts, none importing another in a circle: the loop state (:mod:`repropack.run.state`),
the attempt builder (:mod:`repropack.run.builder`), the finisher (:mod:`repropack.run.finish`),
the one retry policy (:mod:`repropack.run.retry`), polling (:mod:`repropack.run.polling`) and
pipe units (:mod:`repropack.run.units`). The loop owns the order of business and time limits.
"""

from __future__ import annotations

import time
from typing import Any

from repropack.backends.base import CANCELLED, JobStatus
from repropack.run import rundir
from repropack.run.builder import AttemptBuilder, Unstarted
from repropack.run.context import RunContext
from repropack.run.finish import Finisher
from repropack.run.polling import Poller
from repropack.run.retry import RetryPolicy
from repropack.run.safepath import ProjectTree
from repropack.run.scheduler import Demand, demand_of
from repropack.run.state import Frontier, LoopState
from repropack.run.units import Units

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a time limit passes


class Executor:
    def __init__(self, ctx: RunContext, state: LoopState, planner: Any, journal: Any, hashes: Any, scheduler: Any,
                 records: Any):
        self.ctx, self.state, self.dag = ctx, state, ctx.dag
        self.planner, self.journal, self.scheduler = planner, journal, scheduler
        self.tree = ProjectTree(ctx.root)  # outputs are reached from here, no link leading outside followed
        self.slots = rundir.ScratchSlots(rundir.run_root(ctx.root, ctx.run_id))
        self.records, self.hashes = records, hashes
        self.frontier = Frontier(self.dag, ctx.units)
        self.builder = AttemptBuilder(ctx, state, journal, records, self.tree, self.slots)
        self.finisher = Finisher(ctx, state, journal, records, self.tree, scheduler, hashes, self.frontier,
                                 RetryPolicy(ctx.options), done=planner.state.done)
        self.units = Units(ctx, state, journal, planner, scheduler, self.tree, self.builder, self.finisher,
                           self.frontier, self._demand)
        self.poller = Poller(state, ctx.events, self._finish)
        self.adopted: dict[str, Any] = {}  # instance -> (Active, JobStatus) of a killed run's job that succeeded
        self.where: dict[tuple[str, int], dict[str, Any]] = {}  # (instance, attempt) -> that job's slot and key

    def loop(self) -> None:
        state, frontier = self.state, self.frontier
        while True:
            self._resolve_ready()
            self._release_delayed()
            if not state.stopping:
                single = []
                for iid, _ in self.scheduler.take():
                    if iid in self.ctx.units:
                        self.units.launch(iid, state.attempt_of.get(iid, 1))
                    else:
                        single.append((iid, state.attempt_of.get(iid, 1)))
                if single:
                    self._launch(single)
            if (not state.active and not frontier.ready and not state.delayed
                    and (not len(self.scheduler) or state.stopping)):
                break
            self.poller.poll()
            self.units.watch()
            self._enforce_deadlines()
            self.finisher.journal_skips()
            self.journal.flush()
        for iid in self.scheduler.drop_ready():
            self.finisher.not_run(iid)

    def _resolve_ready(self) -> None:
        ready, finisher = self.frontier.ready, self.finisher
        while ready:
            iid = ready.popleft()
            if self.state.stopping:
                finisher.not_run(iid)
                continue
            if iid in self.ctx.units:
                self.units.resolve(iid)
                continue
            inst = self.dag.instances[iid]
            decision = self.planner.decide(inst)
            if decision.missing:
                path = decision.missing[0]
                maker = self.dag.producers.get(path)
                why = f", which {maker} should have made" if maker else " (no step makes it)"
                finisher.fail(iid, "missing-input", f"missing input {path}{why}", attempts=0)
                continue
            if not decision.run:
                finisher.skip(iid, decision.parts)
                self.frontier.complete(iid)
                continue
            self.state.parts[iid] = decision.parts
            if iid in self.adopted and self._collect_adopted(iid, decision.parts):
                continue
            self.scheduler.push(self.frontier.order[iid], iid, demand_of(inst, 1))

    def _collect_adopted(self, iid: str, parts: Any) -> bool:
        from repropack.run.adopt import collect

        adopted = self.adopted.pop(iid)
        return collect(self.builder, self.finisher, adopted, self.where.get((iid, adopted[0].attempt)), parts)

    def _release_delayed(self) -> None:
        state = self.state
        if not state.delayed:
            return
        now = time.monotonic()
        keep = []
        for due, iid, attempt in state.delayed:
            members = self.ctx.units.get(iid, (iid,))
            if state.stopping:
                for member in members:
                    self.finisher.fail(member, CANCELLED, "stopped before its retry", attempts=attempt - 1)
            elif due <= now:
                demand = self._demand(iid, attempt)
                why = self.scheduler.never_fits(demand)
                if why:
                    for member in members:
                        self.finisher.fail(member, "resources", f"attempt {attempt} {why}", attempts=attempt - 1)
                    continue
                state.attempt_of[iid] = attempt
                self.scheduler.push(self.frontier.order[iid], iid, demand)
            else:
                keep.append((due, iid, attempt))
        state.delayed = keep

    def _demand(self, iid: str, attempt: int) -> Demand:
        """What an instance, or a pipe unit under its lead, asks of the scheduler."""
        return Demand.together([demand_of(self.dag.instances[m], attempt) for m in self.ctx.units.get(iid, (iid,))])

    def _launch(self, batch: list[tuple[str, int]]) -> None:
        started = self.builder.start_many([(iid, attempt, None, None) for iid, attempt in batch])
        for (iid, attempt), got in zip(batch, started):
            if isinstance(got, Unstarted):
                self.scheduler.release(iid)
                self.finisher.attempt_failed(self.dag.instances[iid], attempt, "submit", got.message,
                                             got.resources, got.attempt_dir)

    def _finish(self, active: Any, status: JobStatus) -> None:
        """The slot is given back once its attempt is recorded (its streams read, its outputs moved
        or its files kept); a pipe unit's members give theirs back when the unit ends."""
        del self.state.active[active.handle.job_id]
        if active.unit is not None:
            self.units.member_ended(active, status)
            return
        self.finisher.finish(active, status)
        if active.slot is not None:
            result = self.state.results.get(active.inst.id)
            ok = result is not None and result.status == "done" and result.attempts == active.attempt
            self.slots.give_back(active.slot, clean=not ok or active.runtime != "host")

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for active in list(self.state.active.values()):
            if active.deadline is not None and now >= active.deadline and not active.timed_out:
                active.timed_out = True
                active.kill_at = now + KILL_GRACE
                active.backend.cancel([active.handle])
            elif active.kill_at is not None and now >= active.kill_at:
                active.kill_at = None
                active.backend.cancel([active.handle], force=True)

    def shutdown(self) -> None:
        """Stop whatever still runs (an exception escaped the loop) and release backends."""
        for backend in self.ctx.backends.made():
            handles = [a.handle for a in self.state.active.values() if a.backend is backend]
            if handles:
                backend.cancel(handles, force=True)
            backend.close()
        for iid in self.dag.instances:
            self.finisher.not_run(iid)
        self.finisher.journal_skips()
        not_run = [iid for iid, result in self.state.results.items() if result.status == "not-run"]
        if not_run:  # selected but never started (an upstream failed, or the run was stopped)
            self.journal.append("not-run", ids=not_run)
        self.slots.remove()
        self.tree.close()

    def end_records(self, status: str) -> None:
        """SHA256SUMS and the final run.json (with what each environment ran in), once nothing runs."""
        from repropack.run.records.recorder import environments_identity

        with ProjectTree(self.ctx.root) as tree:
            try:
                identity = environments_identity(self.ctx.root, self.records.used, self.ctx.environments,
                                                 self.hashes)
            except Exception as exc:  # noqa: BLE001 - the identity is a record, not a reason to fail the run
                self.ctx.events.note(f"warning: could not record the environments' identity: {exc}")
                identity = {}
            self.records.end(status, time.time(), tree, identity)

    def undeclared(self) -> list[str]:
        snapshot = self.builder.snapshot
        if snapshot is None:
            return []
        declared = set(self.dag.producers) | self.ctx.data_paths
        return snapshot.new_files(self.ctx.root, declared)
