"""What holds a local step's processes, and where its resource figures come from.

With writable cgroups (root, or a delegated v2 subtree) every host, Apptainer and Docker step runs in
a cgroup of the run (:mod:`repropack.backends.local.cgroups`): its processes cannot leave it, they are
killed when the step's main process ends, and the figures are the group's own counters. Without, the
runner is a subreaper that tracks each step's processes (:mod:`repropack.backends.local.reaper`); CPU then
comes from ``wait4`` (the step and the descendants it waited for) and peak memory from sampling.
``peak_rss_source`` and ``cpu_source`` in an attempt's metrics say which it was.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from repropack.backends.local import cgroups
from repropack.backends.local.reaper import Reaper

JOIN_SCRIPT = Path(__file__).with_name("cgroup_join.sh")  # sourced through BASH_ENV


class Containment:
    def __init__(self, run_id: str, *, supervisor: Any = None, use_cgroups: bool = True):
        self.run_id = run_id
        self.supervisor = supervisor
        self._layout = cgroups.detect() if use_cgroups else None
        self._groups: cgroups.RunGroups | None = None
        self._reaper: Reaper | None = None
        self._started = False

    @property
    def cgroups(self) -> bool:
        return self._layout is not None

    def _start(self) -> None:
        """On the first step: the run's cgroup (and the removal of dead runs' ones), or the subreaper."""
        self._started = True
        if self._layout is not None:
            try:
                cgroups.remove_leftovers()
                self._groups = cgroups.RunGroups(self._layout, self.run_id)
            except OSError:  # writable on paper only (a read-only mount, a foreign owner): track instead
                self._layout = None
            else:
                return
        announce = self.supervisor.add_process if self.supervisor else None
        self._reaper = Reaper(announce)
        if self.supervisor is not None and getattr(self.supervisor, "pid", None):
            self._reaper.exclude.add(self.supervisor.pid)

    # -- host and apptainer ------------------------------------------------------------------
    def prepare(self, argv: list[str], env: dict[str, str], memory: int | None, *, bash: bool) -> tuple[Any, list[str], dict[str, str]]:
        """The group a process step will join and the argv/env that make it join before anything runs."""
        if not self._started:
            self._start()
        if self._groups is None:
            return None, argv, env
        group = self._groups.take(memory)
        if bash and "BASH_ENV" not in env:
            env = {**env, "BASH_ENV": str(JOIN_SCRIPT), "REPROPACK_CGROUP": group.procs_files}
        else:
            argv = ["bash", "-c", cgroups.JOIN_EXEC, "repropack-join", group.procs_files, *argv]
        return group, argv, env

    def started(self, pid: int, marks: frozenset[str] = frozenset()) -> None:
        """marks: what the step's processes inherit and it alone has (its log paths, its scratch)."""
        if self._reaper is not None:
            self._reaper.started(pid, marks)

    def failed_to_start(self, group: Any) -> None:
        if group is not None and self._groups is not None:
            self._groups.give_back(group)

    def finished(self, group: Any, pid: int, usage: Any) -> tuple[dict[str, Any], bool]:
        """Figures of a reaped step and whether it was OOM-killed; what it left behind is killed."""
        metrics: dict[str, Any] = {}
        if usage is not None:
            metrics["cpu"], metrics["cpu_source"] = round(usage.ru_utime + usage.ru_stime, 6), "rusage"
        if group is not None and self._groups is not None:
            killed = group.kill()  # first: a daemon still holding memory or burning CPU counts until now
            measured = group.measure()
            oom = bool(measured.pop("oom"))
            metrics.update(measured)
            self._groups.give_back(group, killed=killed)
            return _rounded(metrics), oom
        peak = self._reaper.ended(pid) if self._reaper is not None else 0
        own = usage.ru_maxrss * 1024 if usage is not None else 0
        # ru_maxrss starts at the runner's own size (the kernel carries it over the exec): only
        # above the runner's peak is it the step's figure
        if own > resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024:
            peak = max(peak, own)
        # None, not 0, for a step that ended before its first sample: unknown is not nothing
        metrics["peak_rss"], metrics["peak_rss_source"] = peak or None, "proc-sampler"
        return metrics, False

    # -- docker ------------------------------------------------------------------------------
    def docker_parent(self) -> tuple[Any, str | None]:
        """A group to start a container under (``cgroup_parent``), so its figures outlive it."""
        if not self._started:
            self._start()
        if self._groups is None or self._layout is None or self._layout.version != 1:
            return None, None  # v2 under systemd's driver names slices differently: docker's own stats
        group = self._groups.take(None)
        return group, "/" + str(group.memory_dir.relative_to(self._layout.memory))

    def docker_measure(self, group: Any) -> dict[str, Any]:
        if group is None:
            return {"peak_rss_source": "none", "cpu_source": "none"}
        measured = group.measure()
        measured.pop("oom", None)
        return _rounded(measured)

    def docker_done(self, group: Any) -> None:
        if group is not None and self._groups is not None:
            self._groups.give_back(group)

    # -- loop --------------------------------------------------------------------------------
    def wait(self, now: float, wait: float) -> float:
        """How long the poller may block: samples are due every SAMPLE_INTERVAL without cgroups."""
        return min(wait, self._reaper.due(now)) if self._reaper is not None else wait

    def tick(self, now: float) -> None:
        if self._reaper is not None:
            self._reaper.sample(now)

    def cleanup_leftovers(self) -> list[str]:
        return cgroups.remove_leftovers() if self._layout is not None else []

    def close(self) -> None:
        if self._groups is not None:
            self._groups.close()
            self._groups = None
        if self._reaper is not None:
            self._reaper.close()


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    if isinstance(metrics.get("cpu"), float):
        metrics["cpu"] = round(metrics["cpu"], 6)
    return metrics


__all__ = ["Containment", "JOIN_SCRIPT"]
