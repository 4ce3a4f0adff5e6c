"""A tiny watchdog that outlives the runner just long enough to clean up after it.

The runner starts one supervisor per run (``python -m repropack.backends.local.supervisor
RUN_ID``) and keeps the write end of its stdin. It announces every process
group it starts (``+pg PID``/``-pg PID``), every container (``+ct ID``) and,
without cgroups, every orphan a step left to it (``+p PID START``, start time in
clock ticks: a reused pid is never killed). The run's cgroups it finds by name.
A clean end sends ``bye``. If the pipe closes without ``bye`` -- the runner was
killed, even with SIGKILL -- the supervisor at once kills everything in the
run's cgroups and removes them, kills the announced process groups and
processes, their sessions and all their descendants, every process whose
environment carries ``REPROPACK_RUN_ID=<run>`` (covers a child started a moment
before its group was announced), and removes the containers labelled with the
run. It is one process per run, not one per step, so it costs nothing per
instance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from repropack.backends.base import LABEL_PROJECT, LABEL_RUN, RUN_ENV

__all__ = ["LABEL_PROJECT", "LABEL_RUN", "RUN_ENV", "Supervisor", "remove_containers"]
FLUSH_INTERVAL = 0.1  # seconds between announcements to the supervisor


class Supervisor:
    """The runner's side: start the watchdog and tell it what to guard."""

    def __init__(self, run_id: str, *, containers: bool = False):
        self.run_id = run_id
        self.containers = containers
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._pending: list[str] = []
        self._last_flush = 0.0

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "repropack.backends.local.supervisor", self.run_id, *(["--docker"] if self.containers else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's SIGINT must not reach it before the runner has stopped
            close_fds=True,
            env={**os.environ, "PYTHONPATH": _package_parent()},
        )
        assert self._proc.stdin is not None
        self._fd = self._proc.stdin.fileno()

    def _send(self, line: str) -> None:
        # Batched: a child started since the last flush is still found by its REPROPACK_RUN_ID.
        self._pending.append(line)

    def flush(self, *, force: bool = False) -> None:
        """Send what was announced, at most every FLUSH_INTERVAL unless forced.

        Each send wakes the supervisor process; per instance that cost more than a step's
        own spawn. A process started since the last send is still found by its marker.
        """
        if not self._pending or self._fd < 0:
            return
        now = time.monotonic()
        if not force and now - self._last_flush < FLUSH_INTERVAL:
            return
        self._last_flush = now
        pending, self._pending = self._pending, []  # one swap: the spawner thread may be appending
        data = ("\n".join(pending) + "\n").encode()
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except BrokenPipeError:
            self._fd = -1

    def add_group(self, pgid: int) -> None:
        self._send(f"+pg {pgid}")

    def remove_group(self, pgid: int) -> None:
        self._send(f"-pg {pgid}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def add_process(self, pid: int, start: int) -> None:
        self._send(f"+p {pid} {start}")

    def add_container(self, container_id: str) -> None:
        self._send(f"+ct {container_id}")

    def remove_container(self, container_id: str) -> None:
        self._send(f"-ct {container_id}")

    def close(self) -> None:
        if self._proc is None:
            return
        self._send("bye")
        self.flush(force=True)
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._fd = -1


def _package_parent() -> str:
    import repropack

    parent = os.path.dirname(os.path.dirname(os.path.abspath(repropack.__file__)))
    rest = os.environ.get("PYTHONPATH")
    return parent + (os.pathsep + rest if rest else "")


def processes_of_run(run_id: str) -> list[int]:
    """Pids whose environment carries this run's marker."""
    marker = f"{RUN_ENV}={run_id}".encode()
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(name))
    return found


def kill_run(run_id: str, groups: set[int], containers: set[str], *, docker: bool = False,
             processes: dict[int, int] | None = None) -> None:
    from repropack.backends.local import cgroups as cg

    run_groups = cg.run_dirs(run_id)
    if run_groups:  # first: nothing in them can fork away (they are inescapable)
        cg.kill_trees(run_groups)
    _kill_tracked(groups, processes or {})
    for _ in range(3):  # a group being announced may have forked meanwhile
        pids = processes_of_run(run_id)
        for pid in pids:
            try:
                if os.getpgid(pid) == pid:
                    _killpg(pid)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not pids:
            break
        time.sleep(0.05)
    for path in run_groups:
        cg.remove_run_dirs(path.name)
    if docker or containers:
        remove_containers(run_id, containers)


def _kill_tracked(groups: set[int], processes: dict[int, int]) -> None:
    """The announced groups and processes, their sessions and every descendant, however deep."""
    from repropack.backends.local.reaper import kill

    for _ in range(5):
        table = _process_table()
        roots = {p for p in groups if p in table}
        roots |= {p for p, start in processes.items() if p in table and table[p][2] == start}
        victims = set(roots) | {p for p, (_, sid, _) in table.items() if sid in groups}
        grew = True
        while grew:
            more = {p for p, (ppid, _, _) in table.items() if ppid in victims} - victims
            victims |= more
            grew = bool(more)
        victims.discard(os.getpid())
        if not victims:
            return
        for pid in victims:
            kill(pid, table[pid][2])
        time.sleep(0.02)


def _process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, session id, start time) of every process."""
    from repropack.backends.local.reaper import stat_fields

    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = stat_fields(int(name))
        if fields is not None and fields[0] != "Z":
            table[int(name)] = (int(fields[1]), int(fields[3]), int(fields[19]))
    return table


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def remove_containers(run_id: str, containers: set[str] | None = None, *, label: str = LABEL_RUN) -> list[str]:
    """Force-remove containers of a run (by id and by label); returns their ids."""
    from repropack import docker_api

    # no ping: a runner was just killed and every moment counts; a dead engine fails the list below
    client = docker_api.connect_if_running(15, ping=False)
    if client is None:
        return []
    removed = []
    try:
        try:
            listed = client.containers.list(all=True, filters={"label": f"{label}={run_id}"})
        except Exception:  # engine down: nothing of ours can be running in it
            listed = []
        found = {c.id: c for c in listed}
        for cid in containers or ():
            if cid not in found:
                try:
                    found[cid] = client.containers.get(cid)
                except Exception:
                    pass
        for cid, container in found.items():
            try:
                container.remove(force=True)
                removed.append(cid)
            except Exception:
                pass
    finally:
        client.close()
    return removed


def main(argv: list[str]) -> int:
    run_id, docker = argv[0], "--docker" in argv[1:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    containers: set[str] = set()
    processes: dict[int, int] = {}
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").strip()
        if line == "bye":
            return 0
        op, _, arg = line.partition(" ")
        if op == "+pg":
            groups.add(int(arg))
        elif op == "-pg":
            groups.discard(int(arg))
        elif op == "+ct":
            containers.add(arg)
        elif op == "-ct":
            containers.discard(arg)
        elif op == "+p":
            pid, _, start = arg.partition(" ")
            processes[int(pid)] = int(start)
    kill_run(run_id, groups, containers, docker=docker, processes=processes)  # EOF without bye: the runner died
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
