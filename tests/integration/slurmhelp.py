"""Helpers of the SLURM tests: projects with an `hpc` profile, the cluster's configuration changed and restored.

Tests that change the shared cluster (MaxArraySize, accounting) hold one machine-wide lock for the
change and restore the configuration in a ``finally``, so runs of other tests see it unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
LOCK = Path("/tmp/repropack-slurm-config.lock")


def sh(*argv: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=check)


def wait_for(probe, within: float = 60.0, step: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if probe():
                return True
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(step)
    return False


@contextlib.contextmanager
def cluster_lock(*, shared: bool = False) -> Iterator[None]:
    """Exclusive: this test changes the cluster. Shared: it needs the cluster as configured."""
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid(name: str) -> int | None:
    try:
        return int(Path(f"/run/{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _stop(name: str) -> None:
    pid = _pid(name)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30)


def _controller_up() -> bool:
    return sh("scontrol", "ping", check=False, timeout=10).stdout.count("UP") > 0


def _node_up() -> bool:
    out = sh("sinfo", "-h", "-o", "%T", check=False, timeout=10).stdout.split()
    return any(s.startswith(("idle", "mix", "alloc")) for s in out)


def restart_controller() -> None:
    _stop("slurmctld")
    sh("slurmctld")
    assert wait_for(_controller_up, 60), "slurmctld did not come back"
    assert wait_for(_node_up, 60), "the node did not come back"


@contextlib.contextmanager
def slurm_conf(**changes: str) -> Iterator[None]:
    """slurm.conf with keys changed (restart of slurmctld), restored afterwards."""
    with cluster_lock():
        original = SLURM_CONF.read_text()
        text = original
        for key, value in changes.items():
            line = f"{key}={value}"
            text, n = re.subn(rf"(?m)^{key}=.*$", line, text)
            if not n:
                text = text.replace("\nNodeName=", f"\n{line}\nNodeName=", 1)
        try:
            SLURM_CONF.write_text(text)
            restart_controller()
            yield
        finally:
            SLURM_CONF.write_text(original)
            restart_controller()


@contextlib.contextmanager
def slurmdbd_stopped() -> Iterator[None]:
    """slurmdbd down: sacct answers 'connection refused'; started again afterwards."""
    with cluster_lock():
        _stop("slurmdbd")
        try:
            yield
        finally:
            sh("slurmdbd")
            assert wait_for(lambda: sh("sacctmgr", "-n", "list", "cluster", check=False, timeout=10).returncode == 0,
                            60), "slurmdbd did not come back"


def hpc_project(root: Path, steps: str, *, profile: str = "", runtime: str = "host") -> Path:
    from runhelp import write_project

    return write_project(root, f"""
        [project]
        name = "hpc-test"
        version = "0.1.0"
        {steps}
        [profiles.local]
        backend = "local"

        [profiles.hpc]
        backend = "slurm"
        runtime = "{runtime}"
        {profile}
        """)


def our_jobs(run_id: str) -> list[str]:
    out = sh("squeue", "-h", "-r", "--me", "-o", "%i|%k", check=False).stdout
    return [line.split("|")[0] for line in out.splitlines() if run_id in line]
