"""The SLURM backend on the real one-node cluster: arrays, packing, failure classes, same digests as local."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from runhelp import journal, last_run_id, repropack, start
from slurmhelp import cluster_lock, hpc_project, our_jobs, sh, slurm_conf, slurmdbd_stopped

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def _cluster(request):
    """Tests that change the cluster take the lock themselves; the others hold it shared meanwhile."""
    if request.node.get_closest_marker("slurm_exclusive"):
        yield
        return
    with cluster_lock(shared=True):
        yield

SCATTER = """
[[steps]]
name = "scatter"
run = "echo {n} > {outputs}; echo out-{n}; echo err-{n} >&2"
foreach = { n = [1, 2, 3, 4, 5, 6, 7] }
outputs = ["out/{n}.txt"]

[[steps]]
name = "gather"
run = "cat {inputs} > {outputs}"
inputs = ["out/{n}.txt"]
outputs = ["all.txt"]
"""


def results(root):
    run_dir = root / ".repropack" / "runs" / last_run_id(root)
    out = []
    for path in sorted((run_dir / "results").glob("slurm-*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def sums(root):
    return (root / ".repropack" / "runs" / last_run_id(root) / "SHA256SUMS").read_text() \
        if (root / ".repropack" / "runs" / last_run_id(root) / "SHA256SUMS").exists() else None


def digests(root, paths):
    import hashlib

    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in paths}


def test_same_digests_as_local_packed_and_records_name_slurm_job_ids(tmp_path):
    local = hpc_project(tmp_path / "local", SCATTER)
    hpc = hpc_project(tmp_path / "hpc", SCATTER, profile="pack = 3\narray-throttle = 2")
    repropack(local, "run", "--profile", "local", check=True)
    done = repropack(hpc, "run", "--profile", "hpc", check=True)
    assert "8 done" in done.stderr
    paths = [f"out/{n}.txt" for n in range(1, 8)] + ["all.txt"]
    assert digests(local, paths) == digests(hpc, paths)
    records = results(hpc)
    assert {r["instance"] for r in records} == {f"scatter[n={n}]" for n in range(1, 8)} | {"gather"}
    assert all(r["backend"] == "slurm" and r["format"] == 2 for r in records)
    jobs = {r["job_id"] for r in records}
    assert len(jobs) == 4  # 7 packed by 3 into 3 elements, and the gather
    known = sh("squeue", "-h", "-r", "-t", "all", "--me", "-o", "%i").stdout.split()
    assert jobs <= set(known)
    scatter = [r for r in records if r["instance"].startswith("scatter")]
    assert {r["outputs"][0]["sha256"] for r in scatter} == {digests(hpc, [f"out/{n}.txt"])[f"out/{n}.txt"]
                                                              for n in range(1, 8)}
    run_dir = hpc / ".repropack" / "runs" / last_run_id(hpc)
    scripts = list((run_dir / "slurm").glob("*.sbatch"))
    assert len(scripts) == 2  # one sbatch per step
    assert any("#SBATCH --array=0-2%2" in s.read_text() for s in scripts)
    one = next(r for r in scatter if r["instance"] == "scatter[n=4]")
    log = (run_dir / one["streams"]["stdout"]["file"]).read_bytes()
    start, length = one["streams"]["stdout"]["offset"], one["streams"]["stdout"]["length"]
    assert log[start:start + length] == b"out-4\n"


def test_shell_metacharacters_in_values_are_inert(tmp_path):
    from test_run_shell_safety import _check, _project

    root = _project(tmp_path / "p", '[profiles.hpc]\nbackend = "slurm"\npack = 4')
    done = repropack(root, "run", "--profile", "hpc")
    assert done.returncode == 0, done.stderr
    _check(root)
    assert not list(tmp_path.rglob("PWNED*"))


def test_out_of_memory_is_retried_with_more_memory(tmp_path):
    steps = """
[[steps]]
name = "big"
run = "python3 -c 'b = bytearray(150_000_000); b[::4096] = b\\"x\\" * len(b[::4096])'; echo ok > {outputs}"
outputs = ["big.txt"]
retries = 1
resources = { memory = "100MB * attempt" }
"""
    root = hpc_project(tmp_path / "p", steps)
    done = repropack(root, "run", "--profile", "hpc")
    assert done.returncode == 0, done.stdout + done.stderr
    attempts = [r for r in journal(root) if r["t"] == "attempt"]
    assert [(a["status"], a.get("failure")) for a in attempts] == [("failed", "oom"), ("ok", None)]


def test_a_time_limit_ends_the_step_as_timeout(tmp_path):
    steps = """
[[steps]]
name = "slow"
run = "sleep 60; touch {outputs}"
outputs = ["slow.txt"]
resources = { time = "3s" }
"""
    root = hpc_project(tmp_path / "p", steps)
    done = repropack(root, "run", "--profile", "hpc")
    assert done.returncode != 0
    failed = [r for r in journal(root) if r["t"] == "failed"]
    assert [(f["id"], f["failure"]) for f in failed] == [("slow", "timeout")]


def test_a_partition_that_does_not_exist_is_refused_before_submitting(tmp_path):
    root = hpc_project(tmp_path / "p", SCATTER, profile='partition = "nope"')
    before = sh("squeue", "-h", "-t", "all", "--me", "-o", "%i").stdout.split()
    done = repropack(root, "run", "--profile", "hpc")
    assert done.returncode != 0
    assert "partition 'nope' does not exist" in done.stderr
    assert sh("squeue", "-h", "-t", "all", "--me", "-o", "%i").stdout.split() == before


def test_resources_beyond_the_partition_are_refused_naming_step_and_limit(tmp_path):
    steps = SCATTER.replace('outputs = ["all.txt"]', 'outputs = ["all.txt"]\nresources = { cpus = 64 }')
    root = hpc_project(tmp_path / "p", steps)
    done = repropack(root, "run", "--profile", "hpc")
    assert done.returncode != 0
    assert "step 'gather' on partition 'debug' asks for 64 cpus; its largest node has" in done.stderr
    assert not (root / "out").exists()


@pytest.mark.slurm_exclusive
def test_an_array_above_max_array_size_is_split(tmp_path):
    root = hpc_project(tmp_path / "p", SCATTER)
    with slurm_conf(MaxArraySize="3"):
        done = repropack(root, "run", "--profile", "hpc")
    assert done.returncode == 0, done.stderr
    run_dir = root / ".repropack" / "runs" / last_run_id(root)
    arrays = sorted(s.read_text().split("#SBATCH --array=")[1].split()[0] for s in (run_dir / "slurm").glob("*.sbatch"))
    assert arrays == ["0", "0", "0-2", "0-2"]  # 7 scatter = 3 + 3 + 1, and the gather


@pytest.mark.slurm_exclusive
@pytest.mark.parametrize("how", ["slurmdbd-stopped", "accounting-none"])
def test_without_accounting_the_workflow_still_completes(tmp_path, how):
    steps = SCATTER + """
[[steps]]
name = "oom"
run = "python3 -c 'b = bytearray(150_000_000); b[::4096] = b\\"x\\" * len(b[::4096])'; touch {outputs}"
outputs = ["oom.txt"]
resources = { memory = "80MB" }
"""
    root = hpc_project(tmp_path / "p", steps)
    change = slurmdbd_stopped() if how == "slurmdbd-stopped" else slurm_conf(
        AccountingStorageType="accounting_storage/none")
    with change:
        probe = subprocess.run(["sacct", "-n", "-X"], capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 or how == "slurmdbd-stopped"
        done = repropack(root, "run", "--profile", "hpc", "--keep-going", timeout=300)
    assert (root / "all.txt").read_text() == "".join(f"{n}\n" for n in range(1, 8))
    failed = {r["id"]: r["failure"] for r in journal(root) if r["t"] == "failed"}
    assert failed == {"oom": "oom"}, done.stdout + done.stderr
    assert not our_jobs(last_run_id(root))


@pytest.mark.slurm_exclusive
def test_a_node_set_down_during_a_job_is_resubmitted_not_counted(tmp_path):
    from slurmhelp import wait_for

    steps = """
[[steps]]
name = "long"
run = "echo run >> ledger.txt; sleep 8; echo done > {outputs}"
outputs = ["long.txt"]
"""
    root = hpc_project(tmp_path / "p", steps)
    node = sh("sinfo", "-h", "-N", "-o", "%N").stdout.split()[0]
    with cluster_lock():
        proc = start(root, "run", "--profile", "hpc")
        try:
            assert wait_for(lambda: (root / "ledger.txt").exists(), 60)
            sh("scontrol", "update", f"nodename={node}", "state=down", "reason=repropack-test")
            time.sleep(2)
        finally:
            sh("scontrol", "update", f"nodename={node}", "state=resume", check=False)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert (root / "ledger.txt").read_text() == "run\nrun\n"  # ran again under a new job id
    attempts = [r for r in journal(root) if r["t"] == "attempt"]
    assert [a["status"] for a in attempts] == ["ok"]  # the node failure did not count as an attempt
    # the stopped job's record is superseded by the resubmitted job's (same attempt, later end)
    records = sorted(results(root), key=lambda r: r["end"])
    assert [(r["attempt"], r["failure"]) for r in records] == [(1, "cancelled"), (1, None)]
    assert records[0]["job_id"] != records[1]["job_id"]


def test_an_sbatch_that_times_out_after_submitting_is_not_repeated(tmp_path):
    """sbatch submits but its answer is lost: the retry finds the job by its comment token instead."""
    import os
    import shutil

    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("sbatch")
    flag = tmp_path / "failed-once"
    (shim / "sbatch").write_text(f"""#!/bin/sh
if [ ! -e {flag} ]; then
  touch {flag}
  {real} "$@" >/dev/null
  echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2
  exit 1
fi
exec {real} "$@"
""")
    (shim / "sbatch").chmod(0o755)
    root = hpc_project(tmp_path / "p", SCATTER)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}
    done = repropack(root, "run", "--profile", "hpc", env=env)
    assert done.returncode == 0, done.stderr
    assert flag.exists()
    records = results(root)
    assert sorted(r["instance"] for r in records) == sorted({f"scatter[n={n}]" for n in range(1, 8)} | {"gather"})
    comments = sh("squeue", "-h", "-r", "-t", "all", "--me", "-o", "%k").stdout.split()
    run_id = last_run_id(root)
    assert len({c for c in comments if run_id in c}) == 2  # one array per step, none twice


def test_ctrl_c_cancels_the_runs_jobs(tmp_path):
    import signal

    from slurmhelp import wait_for

    steps = """
[[steps]]
name = "wait"
run = "sleep 120; touch {outputs}"
foreach = { n = [1, 2, 3] }
outputs = ["w/{n}"]
"""
    root = hpc_project(tmp_path / "p", steps)
    proc = start(root, "run", "--profile", "hpc")
    try:
        assert wait_for(lambda: (root / ".repropack" / "runs" / "latest").exists() and our_jobs(last_run_id(root)), 60)
        run_id = last_run_id(root)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert wait_for(lambda: not our_jobs(run_id), 60)
    failed = {r["id"]: r["failure"] for r in journal(root) if r["t"] == "failed"}
    assert set(failed.values()) == {"cancelled"} and len(failed) == 3


KILL_STEPS = """
[[steps]]
name = "work"
run = "echo {n} >> ledger.txt; sleep 6; echo {n} > {outputs}"
foreach = { n = [1, 2, 3, 4] }
outputs = ["w/{n}.txt"]
"""


def _kill_and_restart(root):
    import signal

    from slurmhelp import wait_for

    proc = start(root, "run", "--profile", "hpc")
    try:
        assert wait_for(lambda: (root / "ledger.txt").exists(), 60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = last_run_id(root)
    assert our_jobs(killed)  # SIGKILL left the jobs running: they survive the runner
    done = repropack(root, "run", "--profile", "hpc", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not our_jobs(killed)
    return done


def test_a_runner_killed_with_sigkill_adopts_its_jobs_on_restart(tmp_path):
    root = hpc_project(tmp_path / "p", KILL_STEPS)
    done = _kill_and_restart(root)
    assert "adopting" in done.stderr
    adopted = [r for r in journal(root) if r["t"] == "adopted"]
    assert adopted and {r["backend"] for r in adopted} == {"slurm"}
    assert all(r["status"] in ("succeeded", "failed") for r in adopted)
    assert sorted((root / "w").iterdir()) == sorted(root / "w" / f"{n}.txt" for n in range(1, 5))


def test_after_sigkill_and_restart_every_instance_ran_exactly_once(tmp_path):
    root = hpc_project(tmp_path / "p", KILL_STEPS)
    _kill_and_restart(root)
    assert sorted((root / "ledger.txt").read_text().split()) == ["1", "2", "3", "4"]
