"""The job-side results script: runs beside the step on the execution side and writes its results record.

Stdlib-only on purpose: a scheduler copies this file next to the run records and starts it as
``python3 jobside.py --tasks FILE --index N ...`` on the node (around ``apptainer exec``) or inside
a user's container, where repropack is not installed. It must not import repropack. Where a node
has no ``python3``, ``jobside.sh`` (POSIX shell with ``sha256sum``) does the same with coarser
figures.

One call runs one *element*: a list of members (step attempts), one after the other, read from
line ``N`` of the tasks file (JSON lines, written by the backend). For each member it

- starts the member's ``argv`` in its own session, in ``cwd``, with exactly the environment named by
  ``env`` in the environment file (mode 0600, never inside a kept script);
- stops it at its own ``time`` (a packed element's limit is the sum of its members');
- measures wall time, CPU time (``RUSAGE_CHILDREN``) and peak memory: the job's cgroup
  (``memory.max_usage_in_bytes`` v1, ``memory.peak`` v2, reset between members where the kernel
  allows), else ``ru_maxrss``; and the cgroup's OOM kills, so an out-of-memory kill is classified
  here even when the scheduler has no accounting;
- hashes each declared output (sha256, size) once the member succeeded;
- appends its non-empty stdout/stderr, framed, to ``streams/<writer>.log`` and one results line
  (records format 2) to ``results/<writer>.jsonl``, flushed and fsynced.

A SIGTERM (scancel, the time limit) is passed to the running member; it and every member not yet
started get a record (``timeout`` when the element's deadline has come, else ``cancelled``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time

FORMAT = 2
FRAME = b"#repropack-stream "
CHUNK = 1 << 20
GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a member's own time limit passes
CGROUP_ROOT = "/sys/fs/cgroup"


# -- cgroup figures ----------------------------------------------------------------------------
class Cgroup:
    """The memory cgroup this process runs in (the job's, under a scheduler), v1 or v2."""

    def __init__(self, proc_cgroup: str = "/proc/self/cgroup", root: str = CGROUP_ROOT):
        self.path = None
        self.version = 0
        try:
            with open(proc_cgroup, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            return
        for line in lines:
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                path = os.path.join(root, "memory", rel.lstrip("/"))
                if os.path.exists(os.path.join(path, "memory.max_usage_in_bytes")):
                    self.path, self.version = path, 1
                    return
        for line in lines:
            if line.startswith("0::"):
                path = os.path.join(root, line[3:].lstrip("/"))
                if os.path.exists(os.path.join(path, "memory.peak")):
                    self.path, self.version = path, 2

    def _read(self, name: str, path: str | None = None) -> str | None:
        try:
            with open(os.path.join(path or self.path or "", name), encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None

    def reset_peak(self) -> bool:
        """Start a fresh peak for the next member; False where the kernel does not allow it."""
        if self.path is None:
            return False
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            with open(os.path.join(self.path, name), "w", encoding="utf-8") as f:
                f.write("0\n")
            return True
        except OSError:
            return False

    def peak(self) -> int | None:
        text = self._read("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak")
        try:
            return int(text.strip()) if text else None
        except ValueError:
            return None

    def oom_kills(self) -> int:
        """OOM kills counted in this group and its ancestors (the limit sits on the job's group)."""
        total, path = 0, self.path
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        while path and len(path) > len(CGROUP_ROOT) + len("/memory"):
            for line in (self._read(name, path) or "").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    total += int(value)
            path = os.path.dirname(path)
        return total


# -- outputs -----------------------------------------------------------------------------------
def digest(path: str) -> dict | None:
    """sha256 and size of one output file; None for a folder or a missing path (the runner checks those)."""
    if os.path.isdir(path) or not os.path.exists(path):
        return None
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
            size += len(block)
    return {"path": path, "sha256": h.hexdigest(), "size": size, "type": "file"}


# -- records -----------------------------------------------------------------------------------
class Writer:
    """Appends framed streams and results lines for one writer (``slurm-<jobid>``)."""

    def __init__(self, run_dir: str, writer: str):
        self.writer = writer
        os.makedirs(os.path.join(run_dir, "results"), exist_ok=True)
        os.makedirs(os.path.join(run_dir, "streams"), exist_ok=True)
        self.results = os.path.join(run_dir, "results", writer + ".jsonl")
        self.streams = os.path.join(run_dir, "streams", writer + ".log")
        self.stream_name = os.path.relpath(self.streams, run_dir)

    def frame(self, instance: str, attempt: int, stream: str, path: str | None) -> dict | None:
        """Copy a member's stream into the writer's log; its place there, or None when empty."""
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if not data:
            return None
        # the records' frame (repropack.run.records.format.frame): header line, data, newline
        head = FRAME + json.dumps({"instance": instance, "attempt": attempt, "stream": stream, "length": len(data)},
                                  separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
        fd = os.open(self.streams, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            offset = os.lseek(fd, 0, os.SEEK_END) + len(head)
            os.write(fd, head + data + b"\n")
        finally:
            os.close(fd)
        return {"file": self.stream_name, "offset": offset, "length": len(data)}

    def record(self, entry: dict) -> None:
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


# -- running -----------------------------------------------------------------------------------
class Element:
    def __init__(self, members: list, envs: dict, writer: Writer, job_id: str, backend: str, deadline: float | None):
        self.members = members
        self.envs = envs
        self.writer = writer
        self.job_id = job_id
        self.backend = backend
        self.deadline = deadline  # wall time the scheduler stops the whole element
        self.cgroup = Cgroup()
        self.child: subprocess.Popen | None = None
        self.terminated = False

    def on_term(self, signum, frame) -> None:
        self.terminated = True
        if self.child is not None and self.child.poll() is None:
            try:
                os.killpg(self.child.pid, signal.SIGTERM)
            except OSError:
                pass

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, self.on_term)
        worst = 0
        for member in self.members:
            if self.terminated:
                self.write(member, self.stopped_record(member, started=False))
                continue
            entry = self.run_member(member)
            self.write(member, entry)
            worst = worst or (0 if entry["exit_status"] == 0 and not entry["failure"] else 1)
        return worst

    def stopped_record(self, member: dict, *, started: bool) -> dict:
        timeout = self.deadline is not None and time.time() >= self.deadline - GRACE
        failure = "timeout" if timeout else "cancelled"
        why = "the job's time limit" if timeout else "the job was stopped"
        now = time.time()
        return self.base(member, now, now) | {
            "failure": failure, "message": ("stopped by " if started else "not started: ") + why}

    def base(self, member: dict, start: float, end: float) -> dict:
        return {"format": FORMAT, "instance": member["instance"], "attempt": member["attempt"],
                "writer": self.writer.writer, "backend": self.backend, "job_id": self.job_id,
                "pack_index": member.get("pack_index", 0), "start": start, "end": end,
                "wall": round(end - start, 6), "cpu": None, "cpu_source": None, "peak_rss": None,
                "peak_rss_source": None, "exit_status": None, "signal": None, "failure": None,
                "message": "", "outputs": [], "streams": {}, "staging": member.get("staging") or {},
                "requested": member.get("requested") or {}, "failed_dir": None}

    def run_member(self, member: dict) -> dict:
        fresh = self.cgroup.reset_peak()
        ooms = self.cgroup.oom_kills()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = open(member["stdout"], "wb") if member.get("stdout") and member.get("redirect", True) else None
        err = open(member["stderr"], "wb") if member.get("stderr") and member.get("redirect", True) else None
        start = time.time()
        timed_out = False
        try:
            self.child = subprocess.Popen(member["argv"], cwd=member["cwd"], env=self.envs[member["env"]],
                                          stdin=subprocess.DEVNULL, stdout=out or subprocess.DEVNULL,
                                          stderr=err or subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            end = time.time()
            return self.base(member, start, end) | {"exit_status": 127, "failure": "exit",
                                                    "message": "could not start: %s" % exc}
        finally:
            for f in (out, err):
                if f is not None:
                    f.close()
        code = self.wait(member.get("time"))
        if code is None:
            timed_out = True
            code = self.child.wait()
        end = time.time()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        entry = self.base(member, start, end)
        entry["cpu"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 6)
        entry["cpu_source"] = "rusage"
        peak = self.cgroup.peak() if (fresh or len(self.members) == 1) else None
        if peak is not None:
            entry["peak_rss"], entry["peak_rss_source"] = peak, "cgroup-v%d" % self.cgroup.version
        elif after.ru_maxrss > before.ru_maxrss:
            entry["peak_rss"], entry["peak_rss_source"] = after.ru_maxrss * 1024, "rusage"
        sig = -code if code < 0 else (code - 128 if 128 < code <= 192 else None)
        entry["exit_status"] = 128 + sig if code < 0 else code
        entry["signal"] = sig
        oom = self.cgroup.oom_kills() > ooms
        if timed_out:
            entry["failure"], entry["message"] = "timeout", "time limit of %s s exceeded" % member.get("time")
        elif oom and entry["exit_status"] != 0:
            entry["failure"], entry["message"] = "oom", "out of memory (killed by the job's memory limit)"
        elif self.terminated and entry["exit_status"] != 0:
            entry.update({k: v for k, v in self.stopped_record(member, started=True).items()
                          if k in ("failure", "message")})
        elif entry["exit_status"] != 0:
            entry["failure"] = "signal" if sig else "exit"
            entry["message"] = "killed by signal %d" % sig if sig else "exit code %d" % entry["exit_status"]
        if entry["failure"] is None:
            found = ((declared, digest(os.path.join(member["cwd"], written)))
                     for declared, written in member.get("outputs", ()))
            entry["outputs"] = [d | {"path": declared} for declared, d in found if d is not None]
        return entry

    def wait(self, limit) -> int | None:
        """The member's exit code; None when its own time limit passed (it is then stopped)."""
        assert self.child is not None
        try:
            return self.child.wait(timeout=limit if limit else None)
        except subprocess.TimeoutExpired:
            pass
        for sig, pause in ((signal.SIGTERM, GRACE), (signal.SIGKILL, None)):
            try:
                os.killpg(self.child.pid, sig)
            except OSError:
                pass
            try:
                self.child.wait(timeout=pause)
                return None
            except subprocess.TimeoutExpired:
                continue
        return None

    def write(self, member: dict, entry: dict) -> None:
        streams = {}
        for stream in ("stdout", "stderr"):
            placed = self.writer.frame(member["instance"], member["attempt"], stream, member.get(stream))
            if placed:
                streams[stream] = placed
        entry["streams"] = streams
        self.writer.record(entry)


def read_line(path: str, index: int) -> dict:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n == index:
                return json.loads(line)
    raise SystemExit("jobside: %s has no element %d" % (path, index))


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobside.py", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", required=True, help="JSON lines, one element (a list of members) per line")
    parser.add_argument("--index", type=int, default=0, help="which line of --tasks to run")
    parser.add_argument("--envs", required=True, help="JSON file: environment name -> variables (mode 0600)")
    parser.add_argument("--run-dir", required=True, help="the run's records folder (results/, streams/)")
    parser.add_argument("--writer", required=True, help="the results file's name, e.g. slurm-123_4")
    parser.add_argument("--job-id", required=True, help="the scheduler's id of this job")
    parser.add_argument("--backend", default="slurm")
    parser.add_argument("--time", type=float, default=None, help="the element's time limit in seconds")
    args = parser.parse_args(argv)
    element = read_line(args.tasks, args.index)
    with open(args.envs, encoding="utf-8") as f:
        envs = json.load(f)
    deadline = time.time() + args.time if args.time else None
    writer = Writer(args.run_dir, args.writer)
    return Element(element["members"], envs, writer, args.job_id, args.backend, deadline).run()


if __name__ == "__main__":
    sys.exit(main())
