"""Backends by name: how to create each one and what it declares about itself.

``local``, ``slurm`` and ``aws-batch`` are built in. A
test (or, later, a plug-in) adds one with :func:`register`; the manifest's
``backend = "..."`` accepts exactly the names registered here, and suggests the
nearest one otherwise.

Cheap to import: a backend's module is imported only when the runner creates it or
asks for its capabilities.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from repropack.backends.base import Backend, BackendContext, Capabilities, JobResources

Factory = Callable[[BackendContext], Backend]
CapabilitiesOf = Callable[[Any], Capabilities]  # profile -> what the backend offers it
# (profile, [(step, resources of its first attempt)]) -> problems, asked before anything is submitted
Preflight = Callable[[Any, list[tuple[str, JobResources]]], list[str]]


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Factory | None  # None: known, not available yet
    capabilities: CapabilitiesOf
    options: tuple[str, ...] = ()  # profile keys this backend accepts besides the common ones
    runtimes: tuple[str, ...] | None = None  # the runtimes it can run (None: any); the first is the default
    unavailable: str = "not available yet"
    preflight: Preflight | None = None
    required: tuple[str, ...] = ()  # of its options, those a profile must give

    @property
    def available(self) -> bool:
        return self.factory is not None


_ENTRIES: dict[str, Entry] = {}


def register(name: str, factory: Factory | None, capabilities: CapabilitiesOf | Capabilities, *,
             options: tuple[str, ...] = (), runtimes: tuple[str, ...] | None = None,
             preflight: Preflight | None = None, required: tuple[str, ...] = ()) -> Entry:
    """Make ``name`` a backend a profile may name (replaces an entry of that name)."""
    caps = capabilities if callable(capabilities) else (lambda profile, _c=capabilities: _c)
    entry = Entry(name, factory, caps, options, runtimes, preflight=preflight, required=required)
    _ENTRIES[name] = entry
    return entry


def unregister(name: str) -> None:
    if name in _BUILTIN:
        raise ValueError(f"the {name} backend is built in")
    _ENTRIES.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(_ENTRIES)


def get(name: str) -> Entry | None:
    return _ENTRIES.get(name)


def nearest(name: str) -> str | None:
    """The registered name ``name`` was most likely meant to be ('slrum' -> 'slurm', 'aws' -> 'aws-batch')."""
    close = difflib.get_close_matches(name, names(), n=1, cutoff=0.6)
    if close:
        return close[0]
    lowered = name.lower()
    return next((n for n in names() if lowered and (n.startswith(lowered) or lowered.startswith(n))), None)


def capabilities(profile: Any) -> Capabilities:
    return _ENTRIES[profile.backend].capabilities(profile)


def preflight(profile: Any, steps: list[tuple[str, JobResources]]) -> list[str]:
    """What the profile's backend says it can never run, before anything is submitted (none: [])."""
    entry = _ENTRIES[profile.backend]
    return entry.preflight(profile, steps) if entry.preflight else []


def create(name: str, context: BackendContext) -> Backend:
    entry = _ENTRIES[name]
    if entry.factory is None:
        raise KeyError(name)
    return entry.factory(context)


def _local(context: BackendContext) -> Backend:
    from repropack.backends.local.backend import LocalBackend

    # the runner's backend: it starts the run's supervisor, which cleans up if this process is killed
    return LocalBackend(run_id=context.run_id, supervise=True, runtimes=context.runtimes)


def _local_capabilities(profile: Any) -> Capabilities:
    from repropack.backends.local.backend import capabilities

    return capabilities(profile)


def _remote(*, staging: bool) -> CapabilitiesOf:
    def of(profile: Any) -> Capabilities:
        return Capabilities(shared_filesystem=not staging, enforces_time=True, enforces_memory=True,
                            co_schedules=False, survives_runner=True, cpus=profile.cpus, memory=profile.memory)

    return of


def _batch(context: BackendContext) -> Backend:
    from repropack.backends.batch.backend import BatchBackend

    return BatchBackend(context)


def _slurm(context: BackendContext) -> Backend:
    from repropack.backends.slurm.backend import SlurmBackend

    return SlurmBackend(context)


def _slurm_capabilities(profile: Any) -> Capabilities:
    from repropack.backends.slurm.checks import capabilities

    return capabilities(profile)


def _slurm_preflight(profile: Any, steps: list[tuple[str, JobResources]]) -> list[str]:
    from repropack.backends.slurm.checks import preflight

    return preflight(profile, steps)


register("local", _local, _local_capabilities)
register("slurm", _slurm, _slurm_capabilities, preflight=_slurm_preflight,
         options=("partition", "account", "qos", "sbatch-args", "reservation", "constraint", "pack",
                  "array-throttle"))
# aws-batch: no shared filesystem (files staged through S3); Batch enforces time (attemptDurationSeconds) and
# memory (the container's limit); its jobs run on when the runner dies (adopt re-attaches)
register("aws-batch", _batch, _remote(staging=True),
         options=("queue", "job-definition", "region", "endpoint", "bucket", "registry", "cost"),
         runtimes=("docker",), required=("queue", "bucket"))
_BUILTIN = frozenset(_ENTRIES)
