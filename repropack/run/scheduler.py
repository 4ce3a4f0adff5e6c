"""Resource-aware choice of which ready instances start now.

Capacity is this machine's cores and memory (or the profile's caps, and -j as
a cap on jobs at once). Ready instances are started in topological order; when
the first one does not fit, smaller ones behind it may start (backfill), looking
at most ``BACKFILL_SCAN`` entries ahead so a long queue costs nothing per step.
An instance that could not fit even on an idle machine is refused before the
run starts (:meth:`Scheduler.never_fits`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from repropack.backends.machine import machine_cpus, machine_gpus, machine_memory
from repropack.human import fmt_bytes

BACKFILL_SCAN = 64
UNLIMITED = 1 << 62  # a capacity with no declared limit (a remote backend queues what it cannot start)


@dataclass(frozen=True, slots=True)
class Demand:
    cpus: int = 1
    memory: int = 0  # bytes; 0 when the step states none
    gpus: int = 0
    jobs: int = 1  # processes at once: a pipe group's members all run together

    @staticmethod
    def together(demands: list[Demand]) -> Demand:
        """What members that must run at the same time (a pipe group) ask for as one."""
        return Demand(sum(d.cpus for d in demands), sum(d.memory for d in demands), sum(d.gpus for d in demands),
                      sum(d.jobs for d in demands))


@dataclass(frozen=True, slots=True)
class Capacity:
    cpus: int
    memory: int
    jobs: int | None = None
    gpus: int = 0

    def describe(self) -> str:
        parts = [f"{self.cpus} cpu(s)" if self.cpus < UNLIMITED else "",
                 f"{fmt_bytes(self.memory)} memory" if self.memory < UNLIMITED else "",
                 f"{self.gpus} gpu(s)" if self.gpus < UNLIMITED else "",
                 f"{self.jobs} job(s) at once" if self.jobs else ""]
        return ", ".join(p for p in parts if p)


def demand_of(inst: object, attempt: int) -> Demand:
    """What one attempt of an instance asks for (its memory may grow with the attempt)."""
    r = inst.step.resources  # type: ignore[attr-defined]
    memory = r.memory.at(attempt) if r.memory is not None else 0
    return Demand(cpus=max(1, int(r.cpus)), memory=memory, gpus=int(r.gpus or 0))


def capacity(*, cpus: int | None = None, memory: int | None = None, jobs: int | None = None) -> Capacity:
    """This machine's resources, lowered by the caps given (profile limits, -j)."""
    have_cpus, have_memory = machine_cpus(), machine_memory()
    return Capacity(
        cpus=min(have_cpus, cpus) if cpus else have_cpus,
        memory=min(have_memory, memory) if memory else have_memory,
        jobs=jobs,
        gpus=machine_gpus(),
    )


class Scheduler:
    def __init__(self, cap: Capacity):
        self.cap = cap
        self.free_cpus = cap.cpus
        self.free_memory = cap.memory
        self.free_gpus = cap.gpus
        self.running = 0
        self._ready: list[tuple[int, str, Demand]] = []
        self._held: dict[str, Demand] = {}

    def never_fits(self, demand: Demand, owner: str | None = None) -> str | None:
        """Why `demand` can never be met here (``owner``: whose capacity this is), or None when it can."""
        problems = []
        if demand.cpus > self.cap.cpus:
            problems.append(f"{demand.cpus} cpus")
        if demand.memory > self.cap.memory:
            problems.append(f"{fmt_bytes(demand.memory)} memory")
        if demand.gpus > self.cap.gpus:
            problems.append(f"{demand.gpus} gpus")
        if self.cap.jobs is not None and demand.jobs > self.cap.jobs:
            problems.append(f"{demand.jobs} jobs at once")
        if not problems:
            return None
        if owner:
            return f"asks for {' and '.join(problems)} but {owner} has at most {self.cap.describe()}"
        return f"asks for {' and '.join(problems)} but at most {self.cap.describe()} can be had"

    def push(self, order: int, instance_id: str, demand: Demand) -> None:
        heapq.heappush(self._ready, (order, instance_id, demand))

    def __len__(self) -> int:
        return len(self._ready)

    def _fits(self, demand: Demand) -> bool:
        return (
            demand.cpus <= self.free_cpus
            and demand.memory <= self.free_memory
            and demand.gpus <= self.free_gpus
            and (self.cap.jobs is None or self.running + demand.jobs <= self.cap.jobs)
        )

    def _slots(self) -> bool:
        return self.cap.jobs is None or self.running < self.cap.jobs

    def take(self, limit: int | None = None) -> list[tuple[str, Demand]]:
        """Reserve and return the ready instances that fit now, in order (with bounded backfill)."""
        started: list[tuple[str, Demand]] = []
        skipped: list[tuple[int, str, Demand]] = []
        while self._ready and self._slots() and (limit is None or len(started) < limit):
            if len(skipped) >= BACKFILL_SCAN or self.free_cpus <= 0:
                break
            entry = heapq.heappop(self._ready)
            _, instance_id, demand = entry
            if self._fits(demand):
                self._reserve(instance_id, demand)
                started.append((instance_id, demand))
            else:
                skipped.append(entry)
        for entry in skipped:
            heapq.heappush(self._ready, entry)
        return started

    def _reserve(self, instance_id: str, demand: Demand) -> None:
        self.free_cpus -= demand.cpus
        self.free_memory -= demand.memory
        self.free_gpus -= demand.gpus
        self.running += demand.jobs
        self._held[instance_id] = demand

    def release(self, instance_id: str) -> None:
        demand = self._held.pop(instance_id, None)
        if demand is None:
            return
        self.free_cpus += demand.cpus
        self.free_memory += demand.memory
        self.free_gpus += demand.gpus
        self.running -= demand.jobs

    def drop_ready(self) -> list[str]:
        """Forget every waiting instance (a stop was asked); returns their ids."""
        ids = [entry[1] for entry in self._ready]
        self._ready.clear()
        return ids
