"""Each backend under test as a kit that makes jobs of each kind, and a poller that waits for them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fakebackend import FakeBackend, FakeCluster, Script
from repropack.backends.base import Backend, Job, JobHandle, JobResources, JobStatus
from repropack.backends.local.backend import LocalBackend
from repropack.backends.local import cgroups
from repropack.run.attempt import render_script

SETTLE = 15.0  # seconds a job of these tests may take to reach a terminal state


class Kit:
    """Makes jobs of a kind ('ok', 'exit', 'signal', 'sleep', 'oom') for one backend."""

    name = "?"

    def __init__(self, root: Path):
        self.root = root
        self.count = 0

    def backend(self) -> Backend:
        raise NotImplementedError

    def command(self, kind: str) -> str:
        return {"ok": "echo hi", "exit": "exit 3", "signal": "kill -KILL $$", "sleep": "sleep 30",
                "oom": f"{sys.executable} -c 'b = bytearray(400_000_000); print(len(b))'"}[kind]

    def job(self, kind: str, *, memory: int | None = None) -> Job:
        self.count += 1
        iid = f"{kind}-{self.count}"
        adir = self.root / "attempts" / iid
        adir.mkdir(parents=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(adir), "REPROPACK_RUN_ID": "conf"}
        return Job(instance_id=iid, attempt=1, run_id="conf", project=self.root, attempt_dir=adir,
                   script=render_script(iid, 1, self.command(kind)), env=env,
                   resources=JobResources(cpus=1, memory=memory))

    def oom_reason(self) -> str | None:
        return None


class LocalKit(Kit):
    name = "local"

    def backend(self) -> Backend:
        return LocalBackend(run_id="conf")

    def oom_reason(self) -> str | None:
        if cgroups.detect() is None:
            return "no writable cgroup memory controller here: the local backend cannot enforce memory"
        return None


class SlurmKit(Kit):
    """The real one-node cluster; the jobs' records go under the kit's project."""

    name = "slurm"

    def backend(self) -> Backend:
        from repropack.backends.base import BackendContext
        from repropack.backends.slurm.backend import SlurmBackend

        return SlurmBackend(BackendContext(run_id="conf", root=self.root), latency_wait=1.0)


class FakeKit(Kit):
    name = "fake"
    SCRIPTS = {"ok": Script("run"), "exit": Script("exit", runs=0.1), "signal": Script("signal", runs=0.1),
               "sleep": Script("ok", runs=30), "oom": Script("oom", runs=0.1)}

    def __init__(self, root: Path):
        super().__init__(root)
        self.cluster = FakeCluster()

    def backend(self, **kw) -> FakeBackend:
        return FakeBackend(self.cluster, scripts=lambda job: self.SCRIPTS[job.instance_id.split("-")[0]], **kw)


def settle(backend: Backend, handles: list[JobHandle], timeout: float = SETTLE) -> dict[str, JobStatus]:
    """Poll until every handle has a terminal status (or fail after ``timeout``)."""
    end = time.monotonic() + timeout
    seen: dict[str, JobStatus] = {}
    while time.monotonic() < end:
        left = [h for h in handles if h.job_id not in seen]
        if not left:
            return seen
        for job_id, status in backend.poll(left, wait=0.2).items():
            if status.state.terminal:
                seen[job_id] = status
        time.sleep(0.01)
    raise AssertionError(f"not terminal after {timeout} s: {[h.job_id for h in handles if h.job_id not in seen]}")
