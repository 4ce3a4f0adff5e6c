"""What the loop is given by the Runner's set-up: the run's fixed facts and its backends.

The loop's parts read these; the changing state is :class:`repropack.run.state.LoopState`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.backends import registry
from repropack.backends.base import Backend, BackendContext, Capabilities
from repropack.run import rundir


class BackendPool:
    """The run's one instance of each backend its profiles name, created on first use."""

    def __init__(self, run_id: str, runtimes: Mapping[str, frozenset[str]], root: Any = None,
                 profiles: Mapping[str, tuple[Any, ...]] | None = None):
        self.run_id, self.root = run_id, root
        self.profiles = profiles or {}  # backend name -> the run's profiles on it
        self.runtimes = runtimes  # backend name -> the runtimes the run's profiles use on it
        self._made: dict[str, Backend] = {}

    def for_profile(self, profile: Any) -> Backend:
        return self.for_name(profile.backend)

    def uses(self, name: str) -> bool:
        """Does a profile of this run use backend ``name``?"""
        return name in self.runtimes

    def for_name(self, name: str) -> Backend:
        backend = self._made.get(name)
        if backend is None:
            context = BackendContext(run_id=self.run_id, runtimes=self.runtimes.get(name, frozenset()),
                                     root=self.root, profiles=self.profiles.get(name, ()))
            backend = self._made[name] = registry.create(name, context)
        return backend

    def made(self) -> list[Backend]:
        return list(self._made.values())

    def cancel(self, actives: Iterable[Any], *, force: bool) -> None:
        """Cancel the given attempts, one call per backend (each backend is told, even of none)."""
        actives = list(actives)
        for backend in self.made():
            backend.cancel([a.handle for a in actives if a.backend is backend], force=force)


@dataclass
class RunContext:
    root: Path
    run_id: str
    dag: Any
    units: Mapping[str, tuple[str, ...]]  # instance -> the members of its pipe unit
    options: Any  # RunOptions
    events: Any  # Events
    redactor: Any
    environments: Any
    profile_for: Callable[[Any], Any]
    capabilities: Callable[[Any], Capabilities]
    labels: Mapping[str, str]
    backends: BackendPool
    data_paths: frozenset[str] = frozenset()
    run_dir: str = field(init=False)  # strings: Path joins cost per instance
    run_rel: str = field(init=False)

    def __post_init__(self) -> None:
        self.run_dir = str(rundir.run_root(self.root, self.run_id))
        self.run_rel = os.path.relpath(self.run_dir, self.root)
