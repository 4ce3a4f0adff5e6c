"""Containment without a cgroup (a user without root): a subreaper and process tracking.

The runner makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so a process whose parent
dies -- a ``setsid`` child, a double-forked daemon -- is re-parented to the runner instead of init,
and cannot get out from under it. Each step is a session and a process group of its own. Every
~50 ms :meth:`Reaper.sample` walks each running step's process tree (``/proc/PID/task/*/children``),
remembers every process it finds (pid and start time, so a reused pid is never killed), tells the
supervisor about it, and sums the tree's resident memory (the peak is the largest sum seen: a
sampled lower bound, shared pages counted once per process). When a step's main process ends,
:meth:`Reaper.ended` kills its process group, every process remembered for it, and every orphan
the runner has been handed that no live step claims, until none is left.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable

PR_SET_CHILD_SUBREAPER = 36
SAMPLE_INTERVAL = 0.05  # seconds between samples of the running steps' trees
_PAGE = os.sysconf("SC_PAGE_SIZE")


def make_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children(pid: int) -> list[int]:
    """Direct children of a process, over all its threads."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                out += [int(c) for c in handle.read().split()]
        except OSError:
            pass
    return out


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command (state first), or None when it is gone.

    The command is cut at its last ')' since it may itself hold spaces and parentheses."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, session id, start time) of a process, or None when it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else (fields[0], int(fields[3]), int(fields[19]))


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def kill(pid: int, start: int) -> None:
    """SIGKILL pid if it is still the process that started at `start`."""
    info = stat(pid)
    if info is not None and info[2] == start:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Reaper:
    """Tracks the processes of the runner's steps (see the module docstring)."""

    def __init__(self, announce: Callable[[int, int], None] | None = None):
        self.me = os.getpid()
        self.session = os.getsid(0)
        self.exclude: set[int] = set()  # the runner's own helpers (the supervisor)
        self.active = make_subreaper()
        self.announce = announce or (lambda pid, start: None)
        self.steps: dict[int, dict[int, int]] = {}  # main pid -> {pid: start time}
        self.peaks: dict[int, int] = {}
        self.marks: dict[int, frozenset[str]] = {}  # main pid -> its stdout/stderr paths, HOME, TMPDIR
        self._announced: set[tuple[int, int]] = set()
        self._next = 0.0

    def started(self, main: int, marks: frozenset[str] = frozenset()) -> None:
        self.steps[main] = {}
        self.peaks[main] = 0
        self.marks[main] = marks
        self._sample_step(main)  # a step too short for any tick still gets its start measured

    def due(self, now: float) -> float:
        """Seconds until the next sample (inf when nothing runs)."""
        return max(0.0, self._next - now) if self.steps else float("inf")

    def sample(self, now: float) -> None:
        if now < self._next or not self.steps:
            return
        self._next = now + SAMPLE_INTERVAL
        for main in list(self.steps):
            self._sample_step(main)
        for pid in self._orphans():  # handed to us while their step runs
            info = stat(pid)
            if info is None or (pid, info[2]) in self._announced:
                continue
            # the supervisor cannot find an orphan from the step's tree once the runner is gone
            self._announced.add((pid, info[2]))
            self.announce(pid, info[2])
            owner = info[1] if info[1] in self.steps else self._owner(pid)
            if owner is not None:
                self.steps[owner][pid] = info[2]

    def _owner(self, pid: int) -> int | None:
        """The running step an orphan that left its session came from, by what it inherited.

        Its stdout/stderr still open on the step's files, or the step's own scratch HOME/TMPDIR in its
        environment (slots are per running step). A hint only (a daemon may close or drop both):
        what holds the orphan is the subreaper, not this.
        """
        seen = set()
        for fd in (1, 2):
            try:
                seen.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                seen |= {v.decode(errors="replace") for v in handle.read().split(b"\0")}
        except OSError:
            pass
        return next((main for main, marks in self.marks.items() if marks & seen), None)

    def _sample_step(self, main: int) -> None:
        tracked = self.steps[main]
        total, todo, seen = 0, [main, *tracked], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            info = stat(pid)
            if info is None or info[0] == "Z" or (pid in tracked and tracked[pid] != info[2]):
                continue
            if pid != main:
                tracked[pid] = info[2]
            total += rss(pid)
            todo += children(pid)
        self.peaks[main] = max(self.peaks[main], total)

    def _orphans(self) -> list[int]:
        """Children of the runner that are not step main processes (re-parented to us).

        Every step starts a session of its own and no process can join another session, so a child
        in the runner's session is one the runner itself started (a tool it runs), never a step's.
        """
        out = []
        for pid in children(self.me):
            if pid not in self.steps and pid not in self.exclude:
                info = stat(pid)
                if info is not None and info[1] != self.session:
                    out.append(pid)
        return out

    def _claimed(self, pid: int, start: int, by_session: int) -> bool:
        if by_session in self.steps or any(t.get(pid) == start for t in self.steps.values()):
            return True
        return self._owner(pid) is not None

    def ended(self, main: int) -> int:
        """The step's main process was reaped: kill what it left. Returns its sampled peak."""
        tracked = self.steps.pop(main, {})
        peak = self.peaks.pop(main, 0)
        self.marks.pop(main, None)
        try:
            os.killpg(main, signal.SIGKILL)  # main > 1: a pid the runner spawned
        except (ProcessLookupError, PermissionError):
            pass
        self._kill_all(tracked)
        return peak

    def _kill_all(self, tracked: dict[int, int]) -> None:
        """Kill the tracked processes, their descendants and unclaimed orphans, until none is left."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            victims = dict(tracked)
            for pid in self._orphans():
                info = stat(pid)
                if info is not None and not self._claimed(pid, info[2], info[1]):
                    victims[pid] = info[2]
            alive = {p: s for p, s in victims.items() if (i := stat(p)) is not None and i[2] == s and i[0] != "Z"}
            self._reap_zombies()
            if not alive:
                self._announced -= set(victims.items())
                break
            for pid, start in alive.items():
                for child in children(pid):
                    info = stat(child)
                    if info is not None:
                        tracked[child] = info[2]
                kill(pid, start)
            time.sleep(0.005)

    def _reap_zombies(self) -> None:
        for pid in self._orphans():
            info = stat(pid)
            if info is not None and info[0] == "Z":
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def close(self) -> None:
        """End of the run: nothing the steps started survives it."""
        for main in list(self.steps):
            self.ended(main)
        self._kill_all({})
