"""Fixtures of the conformance suite: each backend under test as a kit (see backendkit.py)."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest
from backendkit import FakeKit, Kit, LocalKit, SlurmKit


@pytest.fixture(params=["fake", "local", pytest.param("slurm", marks=pytest.mark.slurm)])
def kit(request: pytest.FixtureRequest, tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    if request.param != "slurm":
        yield {"fake": FakeKit, "local": LocalKit}[request.param](root)
        return
    # the SLURM tests that change the shared cluster hold this lock exclusively (tests/integration/slurmhelp.py)
    with open("/tmp/repropack-slurm-config.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield SlurmKit(root)
