"""Shared bits of the benchmark scripts: timing a child process tree, goal lines, machine facts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Timed:
    wall: float
    code: int | None  # None: killed at the time-out
    peak_rss: int  # bytes: the largest RSS of one process of the tree (wait4's ru_maxrss)
    log: Path

    @property
    def ok(self) -> bool:
        return self.code == 0


def run_timed(argv: list[str], *, cwd: Path, log: Path, timeout: float, env: dict[str, str] | None = None) -> Timed:
    """Run argv (output to `log`), wait with wait4 so its rusage is this child's own tree."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                wall = time.perf_counter() - start
                proc.returncode = os.waitstatus_to_exitcode(status)
                return Timed(wall, proc.returncode, usage.ru_maxrss * 1024, log)
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, 9)
                _, _, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return Timed(time.perf_counter() - start, None, usage.ru_maxrss * 1024, log)
            time.sleep(0.005)


def goal(label: str, passed: bool | None, detail: str) -> str:
    mark = "SKIP" if passed is None else ("PASS" if passed else "FAIL")
    return f"  [{mark}] {label}: {detail}"


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()}: {cpus} cpus, {mem:.0f} GB, Python {platform.python_version()}, {platform.platform()}; "
            f"load average {load} (figures from a busy machine are noisy)")


def tool(name: str) -> str | None:
    """An executable next to this interpreter (the venv's), or None."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else None


def fmt_s(seconds: float | None) -> str:
    return "   n/a" if seconds is None else f"{seconds:7.2f} s"
