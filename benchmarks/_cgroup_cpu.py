"""CPU of a whole process tree, from a cgroup made around it; files and folders a run created.

`wrapped(argv)` runs argv inside a fresh cgroup (the cpuacct hierarchy on v1, the unified one on
v2; root, or a delegated tree, is needed) so every process it starts is counted, daemons and
helpers included, until the group is empty. Where no cgroup can be made the CPU comes from
wait4's rusage (the tree's waited-for processes only) and says so.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timed, run_timed  # noqa: E402

ROOT = Path("/sys/fs/cgroup")


@dataclass
class CpuTimed:
    timed: Timed
    cpu: float | None  # seconds
    source: str


def _cpu_dir() -> tuple[Path, int] | None:
    if (ROOT / "cgroup.controllers").exists():
        return (ROOT, 2) if os.access(ROOT, os.W_OK) else None
    for name in ("cpuacct", "cpu,cpuacct"):
        path = ROOT / name
        if (path / "cpuacct.usage").exists() and os.access(path, os.W_OK):
            return path, 1
    return None


def _usage(group: Path, version: int) -> float:
    if version == 1:
        return int((group / "cpuacct.usage").read_text()) / 1e9
    for line in (group / "cpu.stat").read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise ValueError("no usage_usec in cpu.stat")


def wrapped(argv: list[str], *, cwd: Path, log: Path, timeout: float, env: dict[str, str] | None = None) -> CpuTimed:
    """Run argv in a cgroup of its own; wall, exit code, peak RSS and the CPU of everything it started."""
    where = _cpu_dir()
    if where is None:
        timed = run_timed(argv, cwd=cwd, log=log, timeout=timeout, env=env)
        return CpuTimed(timed, None, "none (no writable cgroup)")
    base, version = where
    group = base / f"repropack-bench-{os.getpid()}-{time.monotonic_ns()}"
    group.mkdir()
    try:
        # the child joins before it execs the tool: `sh -c 'echo $$ > procs; exec "$@"'`
        join = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(group), *argv]
        timed = run_timed(join, cwd=cwd, log=log, timeout=timeout, env=env)
        deadline = time.monotonic() + 5
        while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.05)  # a supervisor still winding down is the run's too
        return CpuTimed(timed, _usage(group, version), f"cgroup-v{version}")
    finally:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


FLOOR_LOOP = """import os, sys
n, jobs, argv0 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
running = 0
for i in range(n):
    if running >= jobs:
        os.wait()
        running -= 1
    os.posix_spawnp(argv0[0], [*argv0, f"scripts/{i}.sh"], env,
                    file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    running += 1
while running:
    os.wait()
    running -= 1
"""


def floor_project(root: Path, n: int, script) -> Path:
    """n scripts as repropack renders them (``script(i)`` gives the text), and an out/ folder."""
    (root / "scripts").mkdir(parents=True)
    (root / "out").mkdir()
    for i in range(n):
        (root / "scripts" / f"{i}.sh").write_text(script(i), encoding="utf-8")
    return root


def entries_under(root: Path, skip: tuple[str, ...]) -> int:
    """Files and folders under root, not counting the paths in ``skip`` (relative) or what is in them."""
    count = 0
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        rel = "" if rel == "." else rel + "/"
        dirs[:] = [d for d in dirs if rel + d not in skip]
        count += len(dirs) + sum(1 for f in files if rel + f not in skip)
    return count


def size_under(path: Path) -> int:
    """Bytes on disk of a file, or of everything under a folder."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass
    return total
