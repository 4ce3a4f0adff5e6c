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


# A small go-between: the tool is forked from it, not from this (larger) process, because a child's
# ru_maxrss starts at the RSS of the process it was forked from. It reports the tool's peak on a pipe.
_WRAPPER = """import os, sys
pid = os.fork()
if pid == 0:
    os.close(int(sys.argv[1]))
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_timed(argv: list[str], *, cwd: Path, log: Path, timeout: float, env: dict[str, str] | None = None) -> Timed:
    """Run argv (output to `log`); wall time, exit code and the peak RSS of one process of its tree."""
    read, write = os.pipe()
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", _WRAPPER, str(write), *argv], cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, pass_fds=(write,))
        os.close(write)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            code = None
        wall = time.perf_counter() - start
    with os.fdopen(read, "rb") as pipe:
        reported = pipe.read().strip()
    return Timed(wall, code, int(reported or 0) * 1024, log)


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


def scatter_gather(root: Path, n: int, *, name: str, extra: str = "") -> Path:
    """The benchmarks' workflow: N trivial `echo` instances plus a gather of all of them.

    ``extra`` is appended to the manifest (a profile, for instance)."""
    root.mkdir(parents=True)
    values = ", ".join(str(i) for i in range(n))
    text = f"""\
[project]
name = "{name}"

[[steps]]
name = "make"
run = "echo {{i}} > {{outputs}}"
foreach = {{ i = [{values}] }}
outputs = ["out/{{i}}.txt"]

[[steps]]
name = "gather"
run = "xargs cat < {{inputs:list}} > {{outputs}}"
inputs = ["out/{{i}}.txt"]
outputs = ["all.txt"]
"""
    (root / "repropack.toml").write_text(text + extra, encoding="utf-8")
    return root


def check_output(root: Path, n: int) -> str | None:
    """None when the gather holds every instance's number once, else what is wrong."""
    try:
        lines = (root / "all.txt").read_text().split()
    except FileNotFoundError:
        return "no all.txt"
    return None if sorted(map(int, lines)) == list(range(n)) else f"all.txt has {len(lines)} lines, not {n}"
