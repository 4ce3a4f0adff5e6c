"""examples/quickstart with its `hpc` profile: SLURM job arrays inside the project's SIF, the local run's digests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from runhelp import last_run_id, repropack
from slurmhelp import cluster_lock, sh

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slurm, pytest.mark.apptainer, pytest.mark.docker, pytest.mark.network]


def test_quickstart_hpc_profile_gives_the_local_digests_and_names_slurm_jobs(tmp_path, base_image):
    root = tmp_path / "qs"
    shutil.copytree(REPO / "examples" / "quickstart", root, ignore=shutil.ignore_patterns("results", ".repropack"))
    repropack(root, "lock", "--base-override", base_image, check=True, timeout=900)
    repropack(root, "env", "create", check=True, timeout=900)
    repropack(root, "run", check=True)
    local = {p.name: p.read_bytes() for p in (root / "results").iterdir()}
    repropack(root, "build", "--apptainer", check=True, timeout=1800)
    with cluster_lock(shared=True):
        repropack(root, "run", "--profile", "hpc", "--no-resume", check=True, timeout=600)
        run_dir = root / ".repropack" / "runs" / last_run_id(root)
        records = [json.loads(line) for p in (run_dir / "results").glob("slurm-*.jsonl")
                   for line in p.read_text().splitlines()]
        known = set(sh("squeue", "-h", "-r", "-t", "all", "--me", "-o", "%i").stdout.split())
    assert {p.name: p.read_bytes() for p in (root / "results").iterdir()} == local
    assert {r["instance"] for r in records} == {"count[sample=alpha]", "count[sample=beta]", "count[sample=gamma]",
                                                "summary"}
    assert all(r["backend"] == "slurm" and r["failure"] is None for r in records)
    assert {r["job_id"] for r in records} <= known
    assert all(r["staging"]["runtime"] == "apptainer" for r in records)
