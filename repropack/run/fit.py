"""Plan-time checks of a run against its profiles' backends: known and available, within the declared
capacity, a pipe group only where it can be co-scheduled, and each backend's own preflight.

All before anything runs; each refusal names the step, the profile and the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from repropack.backends import registry
from repropack.backends.base import Capabilities
from repropack.errors import ResourceRequestRefused, RunError
from repropack.run.attempt import resources_for
from repropack.run.scheduler import UNLIMITED, Capacity, Demand, Scheduler, demand_of


class FitCheck:
    def __init__(self, dag: Any, units: Mapping[str, tuple[str, ...]], profile_for: Callable[[Any], Any],
                 jobs: int | None):
        self.dag, self.units, self.profile_for, self.jobs = dag, units, profile_for, jobs
        self.profiles: dict[str, Any] = {}  # profile name -> profile, those the run's instances use
        self.caps: dict[str, Capabilities] = {}  # profile name -> what its backend declares

    def check(self) -> Scheduler:
        """The run's scheduler; raises RunError or ResourceRequestRefused naming the step, profile and limit."""
        profiles = self.profiles = {p.name: p for p in (self.profile_for(i) for i in self.dag.instances.values())}
        for profile in profiles.values():
            entry = registry.get(profile.backend)
            if entry is None or not entry.available:
                why = entry.unavailable if entry else f"not known (backends: {', '.join(registry.names())})"
                raise RunError(f"profile {profile.name!r}: the {profile.backend} backend is {why}")
            self.caps[profile.name] = registry.capabilities(profile)
        limits = {name: self._capacity(profile) for name, profile in profiles.items()}
        problems = []
        for inst in self.dag.instances.values():
            if inst.id in self.units:
                continue  # checked with its group below
            profile = self.profile_for(inst)
            owner = f"profile {profile.name!r} (backend {profile.backend!r})"
            why = Scheduler(limits[profile.name]).never_fits(demand_of(inst, 1), owner)
            if why:
                problems.append(f"step {inst.id} {why}")
        problems += self._groups_that_never_fit(limits)
        problems += self._preflight(profiles)
        self._check_co_scheduling()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ResourceRequestRefused(f"{problems[0]}{more}; nothing was run",
                                         hint="lower its resources or raise the profile's caps")
        return Scheduler(_smallest(limits.values()))

    def _preflight(self, profiles: dict[str, Profile]) -> list[str]:
        """Ask each profile's backend what it can never run (a partition's limits), before submitting."""
        problems: list[str] = []
        for name, profile in profiles.items():
            steps = [(i.step.name, resources_for(i.step, 1)) for i in self.dag.instances.values()
                     if self.profile_for(i).name == name]
            problems += registry.preflight(profile, steps)
        return problems

    def _groups_that_never_fit(self, limits: dict[str, Capacity]) -> list[str]:
        """Pipe groups whose members, which must all run at once, can never be started together."""
        problems = []
        for lead, members in self.units.items():
            if lead != members[0]:
                continue
            names = sorted({self.profile_for(self.dag.instances[m]).name for m in members})
            owner = f"profile {names[0]!r}" if len(names) == 1 else None
            demand = Demand.together([demand_of(self.dag.instances[m], 1) for m in members])
            why = Scheduler(_smallest(limits[n] for n in names)).never_fits(demand, owner)
            if why:
                problems.append(f"pipe group {' + '.join(members)} ({len(members)} steps that stream to each "
                                f"other run at the same time) {why}")
        return problems

    def _capacity(self, profile: Profile) -> Capacity:
        """What the run may use at once on ``profile``: its backend's capacity and -j."""
        caps = self.caps[profile.name]
        cpus = caps.cpus or UNLIMITED
        jobs = self.jobs or profile.max_jobs
        if self.jobs:
            cpus = min(cpus, self.jobs)
        return Capacity(cpus=cpus, memory=caps.memory or UNLIMITED, jobs=jobs,
                        gpus=UNLIMITED if caps.gpus is None else caps.gpus)

    def _check_co_scheduling(self) -> None:
        """A pipe group's members run at once, side by side: only on one backend that can start them so."""
        for members in set(self.units.values()):
            step = self.dag.instances[members[0]].step.name
            profiles = {p.name: p for p in (self.profile_for(self.dag.instances[m]) for m in members)}
            backends = sorted({p.backend for p in profiles.values()})
            if len(backends) > 1:
                spans = ", ".join(map(repr, sorted(profiles)))
                raise ResourceRequestRefused(
                    f"step {step!r}: its pipe group spans profiles {spans} on backends {', '.join(backends)}; "
                    "a pipe needs both ends on one backend", hint="give the piped steps one profile")
            for name in profiles:
                if not self.caps[name].co_schedules:
                    raise ResourceRequestRefused(
                        f"step {step!r}: profile {name!r} uses backend {backends[0]!r}, which cannot start a pipe "
                        "group's members side by side (both ends of a pipe must run at once)",
                        hint="run the piped steps on a local profile, or drop `pipe = true`")


def _smallest(limits: Any) -> Capacity:
    """One scheduler per run for now: it may use what the tightest of its profiles allows."""
    limits = list(limits)
    jobs = [c.jobs for c in limits if c.jobs]
    return Capacity(cpus=min(c.cpus for c in limits), memory=min(c.memory for c in limits),
                    jobs=min(jobs) if jobs else None, gpus=min(c.gpus for c in limits))
