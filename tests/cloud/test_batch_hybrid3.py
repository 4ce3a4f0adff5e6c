"""One run, three backends: a step on the host (local), one as a SLURM job, one as an AWS Batch job
(moto); each step's input comes from the step before, made on another backend."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

import pytest
from cloudhelp import cloud_profile, done_outputs, journal, run_cli, write_project

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.slurm]
SLURM_LOCK = Path("/tmp/repropack-slurm-config.lock")  # tests/integration/slurmhelp.py: shared = as configured

MANIFEST = """
[project]
name = "three"
version = "1.0.0"

[image]
name = "{image}"

[[steps]]
name = "make"
run = "printf 'b\\\\na\\\\nc\\\\n' > {{outputs}}"
outputs = ["work/raw.txt"]

[[steps]]
name = "sort"
run = "sort {{inputs}} > {{outputs}}"
inputs = ["work/raw.txt"]
outputs = ["work/sorted.txt"]
profile = "hpc"

[[steps]]
name = "number"
run = "nl -ba {{inputs}} > {{outputs}}"
inputs = ["work/sorted.txt"]
outputs = ["work/numbered.txt"]
profile = "cloud"

[profiles.local]
backend = "local"

[profiles.hpc]
backend = "slurm"
runtime = "host"
"""


@contextlib.contextmanager
def cluster_as_configured():
    with open(SLURM_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_local_slurm_and_aws_batch_in_one_run(tmp_path, base_image, moto_server, aws_env):
    root = write_project(tmp_path / "p", MANIFEST.format(image=base_image) + cloud_profile(), {})
    with cluster_as_configured():
        done = run_cli(root, "run", "--profile", "local", env=aws_env)
    assert done.returncode == 0, done.stdout + done.stderr
    backends = {r["id"]: r["backend"] for r in journal(root) if r["t"] == "start"}
    assert backends == {"make": "local", "sort": "slurm", "number": "aws-batch"}
    assert (root / "work" / "numbered.txt").read_text().split() == ["1", "a", "2", "b", "3", "c"]
    assert len(done_outputs(root)) == 3
    assert run_cli(root, "verify", env=aws_env).returncode == 0
