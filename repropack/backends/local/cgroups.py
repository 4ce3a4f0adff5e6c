"""Cgroups of the local backend: one per run, one per step attempt, on cgroup v1 or v2.

A step's processes join its group before the script's first command (``cgroup_join.sh``), and a
process cannot leave a cgroup without root, so the group holds every process the step starts,
whatever it does with sessions, process groups or its environment. The group also measures the
step alone: peak memory (``memory.max_usage_in_bytes`` on v1, ``memory.peak`` on v2: anonymous
memory plus the page cache and kernel memory charged to the group, the same sum a memory limit is
enforced against) and CPU (``cpuacct.usage`` on v1, ``cpu.stat`` ``usage_usec`` on v2).

Layout: ``<hierarchy>/repropack/<run-id>@<runner-pid>/<group>``. Steps without a memory limit reuse
slot groups (``s1``, ``s2``, ...; on v1 the peak and CPU counters are reset between steps, the page
cache left by an earlier step is subtracted), so a group costs no mkdir/rmdir per instance;
memory-limited steps get a fresh group (``m<n>``) per attempt, so a limit and an OOM count concern one
attempt. Everything is removed at the end of the run, by the supervisor if the runner dies, and
leftovers of runs whose runner is gone at the start of the next run.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
BASE = "repropack"

# cgroup_join.sh, sourced by the step's bash (BASH_ENV), joins with builtins only (no extra
# process) and leaves nothing behind in the environment. For a runtime that is not bash
# (apptainer) a shell joins, then becomes the runtime:
JOIN_EXEC = 'for _rp in $1; do echo $$ >"$_rp"; done; shift; exec "$@"'


@dataclass(frozen=True)
class Layout:
    version: int  # 1 or 2
    memory: Path  # where groups are made: the v1 memory hierarchy, or the v2 root
    cpu: Path | None  # v1 cpuacct hierarchy (None: CPU from rusage); v2: same as memory

    @property
    def hierarchies(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(p for p in (self.memory, self.cpu) if p is not None))


def detect(root: Path = ROOT) -> Layout | None:
    """The writable cgroup layout of this machine, or None (not root, no delegation, no cgroupfs)."""
    if (root / "cgroup.controllers").exists():  # v2 unified at the root
        controllers = _read(root / "cgroup.controllers").split()
        if "memory" in controllers and os.access(root, os.W_OK):
            return Layout(2, root, root if "cpu" in controllers else None)
        return None
    memory = root / "memory"
    if not (memory / "memory.max_usage_in_bytes").exists() or not os.access(memory, os.W_OK):
        return None
    cpu = next((p for p in (root / "cpuacct", root / "cpu,cpuacct") if (p / "cpuacct.usage").exists()), None)
    return Layout(1, memory, cpu if cpu is not None and os.access(cpu, os.W_OK) else None)


def _read(path: Path | str) -> str:
    # raw syscalls: these run a few times per instance, and a Python file object costs more than the read
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(fd, 65536).decode()
    except OSError:
        return ""
    finally:
        os.close(fd)


def _write(path: Path | str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


class Group:
    """One step's cgroup (a directory per hierarchy)."""

    def __init__(self, layout: Layout, dirs: tuple[Path, ...], limited: bool):
        self.layout = layout
        self.dirs = dirs
        self.limited = limited
        self._base_memory = 0
        self._base_oom = 0
        self._dir = str(dirs[0])
        self._cpu_dir = str(dirs[-1])

    @property
    def memory_dir(self) -> Path:
        return self.dirs[0]

    @property
    def procs_files(self) -> str:
        """What a step writes its pid into, space-separated (REPROPACK_CGROUP of cgroup_join.sh)."""
        return " ".join(f"{d}/cgroup.procs" for d in self.dirs)

    def limit(self, memory: int) -> None:
        if self.layout.version == 2:
            _write(self.memory_dir / "memory.max", str(memory))
            swap = self.memory_dir / "memory.swap.max"
            if swap.exists():
                _write(swap, "0")
            return
        _write(self.memory_dir / "memory.limit_in_bytes", str(memory))
        swap = self.memory_dir / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                _write(swap, str(memory))
            except OSError:
                pass

    def reset(self) -> None:
        """Before a step: counters start from this step (v1 slot reuse)."""
        if self.layout.version == 1:
            _write(f"{self._dir}/memory.max_usage_in_bytes", "0")
            self._base_memory = _int(_read(f"{self._dir}/memory.usage_in_bytes")) or 0
            if self.layout.cpu is not None:
                _write(f"{self._cpu_dir}/cpuacct.usage", "0")
        if self.limited:  # only a limit of its own can OOM-kill in a group
            self._base_oom = self._oom_count()

    def _oom_count(self) -> int:
        name = "memory.events" if self.layout.version == 2 else "memory.oom_control"
        for line in _read(self.memory_dir / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def measure(self) -> dict[str, object]:
        """Peak memory, CPU and OOM of the step since reset(), straight from the kernel's counters."""
        source = f"cgroup-v{self.layout.version}"
        out: dict[str, object] = {"oom": self.limited and self._oom_count() > self._base_oom}
        if self.layout.version == 2:
            peak = _int(_read(self.memory_dir / "memory.peak"))
            for line in _read(self.memory_dir / "cpu.stat").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec" and value.strip().isdigit():
                    out["cpu"], out["cpu_source"] = int(value) / 1e6, source
        else:
            peak = _int(_read(f"{self._dir}/memory.max_usage_in_bytes"))
            if self.layout.cpu is not None:
                usage = _int(_read(f"{self._cpu_dir}/cpuacct.usage"))
                if usage is not None:
                    out["cpu"], out["cpu_source"] = usage / 1e9, source
        if peak is not None:
            out["peak_rss"], out["peak_rss_source"] = max(0, peak - self._base_memory), source
        return out

    def pids(self) -> list[int]:
        return _pids(self._dir)

    def kill(self) -> bool:
        """SIGKILL everything in the group; True once it is empty."""
        return _kill_dir(self._dir, v2=self.layout.version == 2)

    def remove(self) -> bool:
        return all(_rmdir_tree(d) for d in self.dirs)


def _rmdir_tree(path: Path) -> bool:
    """Remove a cgroup directory and the groups under it (docker's, for a container step)."""
    try:
        for child in path.iterdir():
            if child.is_dir():
                _rmdir_tree(child)
        path.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


class RunGroups:
    """The run's cgroup and the pool of step groups under it."""

    def __init__(self, layout: Layout, run_id: str):
        self.layout = layout
        self.name = f"{run_id}@{os.getpid()}"
        self.dirs = tuple(h / BASE / self.name for h in layout.hierarchies)
        self._free: list[Group] = []
        self._draining: list[Group] = []
        self._slots = 0
        self._seq = 0
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
            if layout.version == 2:
                _enable_controllers(d)

    def take(self, memory: int | None) -> Group:
        if memory:
            self._seq += 1
            group = self._make(f"m{self._seq}", limited=True)
            group.limit(memory)
        elif self._free and self.layout.version == 1:
            group = self._free.pop()
        else:
            self._slots += 1
            group = self._make(f"s{self._slots}", limited=False)
        group.reset()
        return group

    def _make(self, name: str, *, limited: bool) -> Group:
        dirs = tuple(d / name for d in self.dirs)
        for d in dirs:
            d.mkdir(exist_ok=True)
        return Group(self.layout, dirs, limited)

    def give_back(self, group: Group, *, killed: bool = False) -> None:
        """After the step's main process ended: kill what is left, then reuse or remove the group."""
        if not (killed or group.kill()):
            self._draining.append(group)
        elif group.limited or self.layout.version == 2:
            if not group.remove():
                self._draining.append(group)
        else:
            self._free.append(group)
        if self._draining:
            self._draining = [g for g in self._draining if not (g.kill() and g.remove())]

    def close(self) -> None:
        kill_trees(list(self.dirs))
        remove_run_dirs(self.name)


def _enable_controllers(path: Path) -> None:
    """v2: a group's children get memory and cpu only if every ancestor delegates them."""
    for d in (path.parent.parent, path.parent, path):
        wanted = [c for c in ("memory", "cpu") if c in _read(d / "cgroup.controllers").split()]
        if wanted:
            try:
                _write(d / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            except OSError:
                pass


def _pids(path: Path | str) -> list[int]:
    return [int(p) for p in _read(f"{path}/cgroup.procs").split()]


def _live(pids: list[int]) -> list[int]:
    """Without zombies: a killed process stays listed until its parent (maybe not us) reaps it."""
    out = []
    for pid in pids:
        stat = _read(f"/proc/{pid}/stat")
        if stat and stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]:
            out.append(pid)
    return out


def _kill_dirs(paths: list[str], *, v2: bool | None = None, within: float = 2.0) -> bool:
    """SIGKILL every live process of these cgroup directories until none is left (or `within` s)."""
    if not any(_pids(p) for p in paths):
        return True
    for path in paths:
        if v2 or (v2 is None and os.path.exists(f"{path}/cgroup.kill")):
            try:  # v2 (5.14+): the kernel kills the whole group at once
                _write(f"{path}/cgroup.kill", "1")
            except OSError:
                pass
    deadline = time.monotonic() + within
    while True:
        pids = _live([pid for p in paths for pid in _pids(p)])
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


def _kill_dir(path: Path | str, *, v2: bool | None = None) -> bool:
    return _kill_dirs([str(path)], v2=v2)


def kill_trees(paths: list[Path]) -> None:
    """Kill every process in these cgroup directories and the groups under them, all in one pass."""
    _kill_dirs([dirpath for path in paths for dirpath, _, _ in os.walk(path)])


def remove_run_dirs(name: str, root: Path = ROOT) -> None:
    """Remove a run's groups in every hierarchy (docker adds its own under a container step's group)."""
    for base in _bases(root):
        _rmdir_tree(base / name)


def run_dirs(run_id: str, root: Path = ROOT) -> list[Path]:
    """The groups of a run (whichever runner pid made them), in every hierarchy."""
    out = []
    for base in _bases(root):
        try:
            out += [e for e in base.iterdir() if e.name.startswith(f"{run_id}@") and e.is_dir()]
        except OSError:
            pass
    return out


def _bases(root: Path) -> list[Path]:
    if (root / BASE).is_dir():
        return [root / BASE]
    try:
        return [h / BASE for h in root.iterdir() if (h / BASE).is_dir()]
    except OSError:
        return []


def remove_leftovers(root: Path = ROOT) -> list[str]:
    """Groups of runs whose runner is gone (killed with its supervisor): kill what is left, remove.

    A group of a live run (its runner pid alive) is never touched; a group of the format before
    `run@pid` is only removed when empty.
    """
    removed = []
    for base in _bases(root):
        try:
            entries = [e for e in base.iterdir() if e.is_dir()]
        except OSError:
            continue
        for entry in entries:
            _, at, pid = entry.name.rpartition("@")
            if at and pid.isdigit():
                if _alive(int(pid)):
                    continue
                kill_trees([entry])
            if _rmdir_tree(entry):
                removed.append(entry.name)
    return sorted(set(removed))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
