"""Pipe units in the executor: members decided, started, retried and failed together.

A unit's members start at once; the producer's ``{outputs}`` for a piped path
is a FIFO in its attempt directory, the reader reads a FIFO at the declared
path, and a :class:`~repropack.run.pipes.Relay` passes and hashes the stream.
When any member fails the others are stopped, and the whole unit is retried
(up to the smallest ``retries`` among its steps) or failed.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.backends.base import CANCELLED, JobStatus
from repropack.run.attempt import OutputFailure, collect_outputs
from repropack.run.pipes import Relay, make_fifo, make_project_fifo, pipe_readers
from repropack.run.plan import decide_unit
from repropack.run.safepath import UnsafePath
from repropack.run import rundir
from repropack.run.builder import Unstarted

PIPE = "pipe"


@dataclass
class UnitState:
    members: tuple[str, ...]
    attempt: int
    relays: dict[str, Relay] = field(default_factory=dict)  # pipe path -> relay
    actives: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, Any] = field(default_factory=dict)
    failed: str | None = None  # the member that failed first
    refused: str = ""  # why the group could not be started (a stream's path leads outside)


class Units:
    """The pipe units of a run: their members decided, started, watched, finished and retried together."""

    def __init__(self, ctx: Any, state: Any, journal: Any, planner: Any, scheduler: Any, tree: Any,
                 builder: Any, finisher: Any, frontier: Any, demand: Any):
        self.ctx, self.state, self.journal, self.planner, self.scheduler = ctx, state, journal, planner, scheduler
        self.tree, self.builder, self.finisher, self.frontier, self.demand = tree, builder, finisher, frontier, demand
        self.dag, self.units, self.root = ctx.dag, ctx.units, ctx.root
        self.unit_state: dict[str, UnitState] = {}

    def resolve(self, lead: str) -> None:
        members = self.units[lead]
        decisions = decide_unit(self.planner, members)
        missing = next((d for d in decisions if d.missing), None)
        if missing is not None:
            for d in decisions:
                self.finisher.fail(d.instance_id, "missing-input", f"missing input {missing.missing[0]}", attempts=0)
            return
        if not any(d.run for d in decisions):
            for d in decisions:
                self.finisher.skip(d.instance_id, d.parts)
            self.frontier.complete(lead)
            return
        for d in decisions:
            self.state.parts[d.instance_id] = d.parts
        self.scheduler.push(self.frontier.order[lead], lead, self.demand(lead, 1))

    def launch(self, lead: str, attempt: int) -> None:
        members = self.units[lead]
        state = UnitState(members, attempt)
        self.unit_state[lead] = state
        readers = pipe_readers(self.dag, members)
        try:
            for path in readers:
                make_project_fifo(self.tree, path)
        except UnsafePath as exc:
            state.refused = str(exc)
            state.statuses = dict.fromkeys(members)
            self._maybe_end_unit(lead)
            return
        pipe_paths: dict[str, dict[str, str]] = {m: {} for m in members}
        fifos = os.path.join(self.ctx.run_dir, "pipes")  # one folder per run, the FIFOs removed at the unit's end
        if readers:
            os.makedirs(fifos, exist_ok=True)
        for path, reader in readers.items():
            producer = self.dag.producers[path]
            temp = Path(fifos) / f"{rundir.instance_dirname(producer)}.attempt-{attempt}.pipe-{len(state.relays)}"
            make_fifo(temp)
            pipe_paths[producer][path] = os.path.relpath(temp, self.root)
            relay = Relay(temp, self.root / path, path=path, producer=producer, reader=reader)
            relay.start()
            state.relays[path] = relay
        # one call: a batch backend may place the members together
        starts = self.builder.start_many([(iid, attempt, pipe_paths[iid], lead) for iid in members])
        state.actives = {iid: started for iid, started in zip(members, starts) if not isinstance(started, Unstarted)}
        for iid, started in zip(members, starts):
            if isinstance(started, Unstarted):
                self.finisher.record_failed_attempt(iid, attempt, "submit", started.message,
                                                    resources=started.resources, adir=started.attempt_dir)
                state.failed = state.failed or iid
                state.statuses[iid] = None
                self._stop_unit(state)
        self._maybe_end_unit(lead)

    def _stop_unit(self, state: UnitState) -> None:
        for active in state.actives.values():
            if active.inst.id not in state.statuses:
                active.backend.cancel([active.handle])
        for relay in state.relays.values():
            relay.stop()

    def member_ended(self, active: Any, status: JobStatus) -> None:
        state = self.unit_state[active.unit]
        state.statuses[active.inst.id] = status
        for relay in state.relays.values():
            relay.member_exited(active.inst.id)
        failure, _ = self.finisher.outcome(active, status)
        # a producer killed by SIGPIPE lost its reader, which ends (and says why) on its own
        if failure is not None and state.failed is None and not _lost_its_reader(active, status):
            state.failed = active.inst.id
            self._stop_unit(state)
        self._maybe_end_unit(active.unit)

    def watch(self) -> None:
        """A relay that gave up on a member (it ended without opening its end) stops the unit now."""
        for lead, state in list(self.unit_state.items()):
            if state.failed is not None:
                continue
            # only once the blamed member has ended: one that closed its input early may still exit
            # with a status of its own, which then is the better answer
            blamed = next((r.blame for r in state.relays.values() if r.error is not None), None)
            if blamed is not None and blamed in state.statuses:
                state.failed = blamed
                self._stop_unit(state)
                self._maybe_end_unit(lead)

    def _maybe_end_unit(self, lead: str) -> None:
        state = self.unit_state[lead]
        if len(state.statuses) < len(state.members):
            return
        del self.unit_state[lead]
        for relay in state.relays.values():
            relay.stop()
            relay.join(timeout=5)
        for path, relay in state.relays.items():  # the reader's FIFO must not stay in the project
            try:
                self.tree.remove(path)
            except UnsafePath:
                pass  # a step put a link leading outside on the way: nothing of ours is there
            try:
                os.unlink(relay.src)
            except FileNotFoundError:
                pass
        self.scheduler.release(lead)
        outcomes = self._unit_outcomes(state)
        if all(failure is None for failure, _, _ in outcomes.values()):
            streams = {path: relay.result() for path, relay in state.relays.items()}
            for iid in state.members:
                _, _, (collected, metrics) = outcomes[iid]
                mine = {p: streams[p] for p in self.dag.instances[iid].pipes if p in streams}
                self.finisher.succeeded(state.actives[iid], collected, metrics, status=state.statuses[iid],
                                        streams=mine, complete=False)
            self._give_back(state, ok=True)
            self.frontier.complete(lead)
            return
        self._unit_failed(lead, state, outcomes)
        self._give_back(state, ok=False)

    def _give_back(self, state: UnitState, *, ok: bool) -> None:
        """The members' slots, once the unit's attempts are recorded (outputs moved, files kept)."""
        for active in state.actives.values():
            if active.slot is not None:
                self.builder.slots.give_back(active.slot, clean=not ok or active.runtime != "host")

    def _unit_outcomes(self, state: UnitState) -> dict[str, tuple[str | None, str, Any]]:
        """Member -> (failure, message, (collected outputs, metrics)); outputs move only if all succeed."""
        outcomes: dict[str, tuple[str | None, str, Any]] = {}
        victims = set()  # members that failed only because a partner did (stopped, or lost their reader)
        for iid in state.members:
            active, status = state.actives.get(iid), state.statuses.get(iid)
            if active is None or status is None:
                outcomes[iid] = ("submit", state.refused or "could not be started", (None, None))
                continue
            failure, message = self.finisher.outcome(active, status)
            if failure == CANCELLED or _lost_its_reader(active, status):
                victims.add(iid)
            outcomes[iid] = (failure, message, (None, self.finisher.metrics(active, status, failure)))
        for relay in state.relays.values():
            blamed, message = relay.verdict()
            if blamed in outcomes and (outcomes[blamed][0] is None or blamed in victims):
                outcomes[blamed] = (PIPE, message, outcomes[blamed][2])
                victims.discard(blamed)
        cause = _cause(outcomes, victims, state.failed)
        if cause is not None:
            state.failed = cause
            for iid, (failure, message, rest) in outcomes.items():
                if iid != cause and (failure is None or iid in victims):
                    outcomes[iid] = (CANCELLED, f"stopped: {cause} failed", rest)
        if all(f is None for f, _, _ in outcomes.values()):
            for iid in state.members:
                active = state.actives[iid]
                metrics = outcomes[iid][2][1]
                try:
                    collected = collect_outputs(self.tree, active.outputs, active.inst.step.expect)
                    outcomes[iid] = (None, "", (collected, metrics))
                except OutputFailure as exc:
                    outcomes[iid] = (exc.failure, exc.message, (None, metrics))
        for iid, (failure, _, (_, metrics)) in outcomes.items():
            if metrics is not None:
                metrics["failure"] = failure
        return outcomes

    def _unit_failed(self, lead: str, state: UnitState, outcomes: dict[str, Any]) -> None:
        for iid, (failure, message, (_, metrics)) in outcomes.items():
            if metrics is not None:
                active = state.actives.get(iid)
                self.finisher.record_failed_attempt(iid, state.attempt, failure, message, metrics=metrics,
                                                    status=state.statuses.get(iid),
                                                    adir=active.attempt_dir if active is not None else None)
        first = state.failed or next(i for i, o in outcomes.items() if o[0] is not None)
        failure, message, _ = outcomes[first]
        outcomes = {first: outcomes[first], **outcomes}  # the cause is reported first
        retries = min(self.dag.instances[m].step.retries for m in state.members)
        said = message if message.startswith(first) else f"{first}: {message}"
        if self.finisher.retry_later(lead, state.attempt, failure, self.ctx.redactor(said), retries=retries):
            return
        for iid, (fail, msg, _) in outcomes.items():
            active = state.actives.get(iid)
            self.finisher.fail(iid, fail or CANCELLED, msg, attempts=state.attempt, dir=self.finisher.kept.get(iid),
                               command=active.command if active else "")


def _lost_its_reader(active: Any, status: Any) -> bool:
    """A producer killed by SIGPIPE (or whose shell reports it, 128 + 13): its reader closed first."""
    if not active.inst.pipes:
        return False
    return status.signal == signal.SIGPIPE or status.exit_code == 128 + signal.SIGPIPE


def _cause(outcomes: dict[str, Any], victims: set[str], first_seen: str | None) -> str | None:
    """The member whose own failure ended the unit: of those not a victim of another, the first to end."""
    causes = [iid for iid, (failure, _, _) in outcomes.items() if failure is not None and iid not in victims]
    if not causes:
        return first_seen if first_seen in outcomes else next((i for i, o in outcomes.items() if o[0]), None)
    return min(causes, key=lambda iid: (outcomes[iid][2][1] or {}).get("end") or 0.0)  # unstarted: 0
