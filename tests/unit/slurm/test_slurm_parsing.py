"""Parsing captured squeue/sacct/scontrol texts, grouping jobs into arrays, rendering the sbatch script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from repropack.backends.base import Job, JobHandle, JobResources, JobState
from repropack.backends.slurm import batch, cli
from repropack.backends.slurm.status import ResultsFile, from_record, needs_resubmit, without_record

SQUEUE = """\
3|3|COMPLETED|None|2026-12-02T03:43:45|repropack-smoke|(null)|/work/ci1
4_2|4|RUNNING|None|2026-12-02T03:45:06|rp-scatter|repropack:run-1:6ee89a47c6e76adc|/tmp/slt
4_3|4|PENDING|Resources|N/A|rp-scatter|repropack:run-1:6ee89a47c6e76adc|/tmp/slt
12_0|12|OUT_OF_MEMORY|OutOfMemory|2026-12-02T03:50:00|rp-big|repropack:run-1:aa|/tmp/slt
"""

SACCT = """\
8|COMPLETED|0:0|/work/wt/slurm|
9_0|OUT_OF_MEMORY|0:125|/tmp/slt|repropack:run-1:x
9_0.batch|OUT_OF_MEMORY|0:125||
9_1|CANCELLED by 0|0:15|/tmp/slt|
9_2|NODE_FAIL|1:0|/tmp/slt|
"""

CONFIG = """\
Configuration data as of 2026-12-02T03:45:39
AccountingStorageType   = accounting_storage/slurmdbd
MaxArraySize            = 1001
TaskPlugin              = task/cgroup,task/affinity
"""

PARTITION = ("PartitionName=debug AllowGroups=ALL Default=YES MaxTime=UNLIMITED MaxMemPerNode=UNLIMITED "
             "State=UP TotalCPUs=2\nPartitionName=short Default=NO MaxTime=00:30:00 MaxMemPerNode=4000 State=UP\n")


def test_squeue_lines_give_element_ids_states_and_comments():
    entries = cli.parse_squeue(SQUEUE)
    assert [(e.job_id, e.array_id, e.state) for e in entries] == [
        ("3", "3", "COMPLETED"), ("4_2", "4", "RUNNING"), ("4_3", "4", "PENDING"), ("12_0", "12", "OUT_OF_MEMORY")]
    assert entries[1].comment.endswith(":6ee89a47c6e76adc") and entries[1].workdir == "/tmp/slt"
    assert entries[2].reason == "Resources"


def test_sacct_lines_leave_out_steps_and_split_exit_codes():
    entries = {e.job_id: e for e in cli.parse_sacct(SACCT)}
    assert set(entries) == {"8", "9_0", "9_1", "9_2"}
    assert (entries["9_0"].state, entries["9_0"].exit_code, entries["9_0"].signal) == ("OUT_OF_MEMORY", 0, 125)
    assert entries["9_1"].state == "CANCELLED" and entries["9_1"].signal == 15
    assert entries["9_2"].exit_code == 1 and entries["9_2"].signal is None


def test_scontrol_config_and_partitions():
    assert cli.parse_keyvalues(CONFIG)["MaxArraySize"] == "1001"
    parts = cli.parse_partitions(PARTITION)
    assert parts["debug"]["Default"] == "YES" and parts["short"]["MaxTime"] == "00:30:00"
    assert cli.parse_memory_mb(parts["short"]["MaxMemPerNode"]) == 4000 << 20
    assert cli.parse_memory_mb("UNLIMITED") is None


@pytest.mark.parametrize("text,seconds", [("UNLIMITED", None), ("30", 1800), ("1:00:00", 3600), ("10:05", 605),
                                          ("2-00:00:00", 172800), ("1-12", 129600), ("INFINITE", None)])
def test_slurm_time_limits(text, seconds):
    assert cli.parse_time(text) == seconds


@settings(derandomize=True, max_examples=200)
@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_time_limits_round_trip(d, h, m, s):
    assert cli.parse_time(f"{d}-{h:02d}:{m:02d}:{s:02d}") == ((d * 24 + h) * 60 + m) * 60 + s


def job(tmp: Path, n: int, *, step="s", time=None, memory=None, options=None) -> Job:
    adir = tmp / f"i{n}" / "attempt-1"
    return Job(instance_id=f"{step}[n={n}]", attempt=1, run_id="run-1", project=tmp, attempt_dir=adir,
               script="true\n", env={"PATH": "/usr/bin", "HOME": str(tmp), "SECRET": "hunter2"},
               resources=JobResources(cpus=1, memory=memory, time=time), step=step,
               options=options or {}, outputs=((f"out/{n}", f"tmp/out-{n}"),))


def test_one_array_per_step_and_resources_split_at_max_array_size(tmp_path):
    jobs = [job(tmp_path, n) for n in range(7)] + [job(tmp_path, 9, step="t")] + [job(tmp_path, 10, memory=10**9)]
    plans = batch.plan(jobs, max_array=3)
    assert [(b.step, len(b.elements)) for b in plans] == [("s", 3), ("s", 3), ("s", 1), ("t", 1), ("s", 1)]
    assert [j.instance_id for j in plans[0].jobs] == ["s[n=0]", "s[n=1]", "s[n=2]"]


def test_packing_by_count_and_by_declared_time(tmp_path):
    counted = batch.plan([job(tmp_path, n, options={"pack": 4}) for n in range(10)], max_array=1000)
    assert [len(e.jobs) for e in counted[0].elements] == [4, 4, 2]
    timed = batch.plan([job(tmp_path, n, time=120, options={"pack": "600s"}) for n in range(11)], max_array=1000)
    assert [len(e.jobs) for e in timed[0].elements] == [5, 5, 1]
    assert [e.time for e in timed[0].elements] == [600, 600, 120]


def test_the_kept_script_holds_no_environment_value(tmp_path):
    group = batch.plan([job(tmp_path, n, time=90, options={"partition": "debug", "array-throttle": 2,
                                                         "sbatch-args": ["--nice=10"]}) for n in range(3)], 10)[0]
    group.token = "tok"
    run_dir = tmp_path / ".repropack" / "runs" / "run-1"
    written = batch.write_batch(group, run_id="run-1", run_dir=run_dir, jobside=run_dir / "j.py",
                                jobside_sh=run_dir / "j.sh")
    script = written.script.read_text()
    assert "hunter2" not in script and "hunter2" not in written.tasks.read_text()
    assert (written.envs.stat().st_mode & 0o777) == 0o600 and "hunter2" in written.envs.read_text()
    for line in ("#SBATCH --array=0-2%2", "#SBATCH --export=NONE", "#SBATCH --no-requeue", "#SBATCH --time=2",
                 "#SBATCH --partition=debug", "#SBATCH --nice=10", "#SBATCH --comment=repropack:run-1:tok"):
        assert line in script.splitlines()
    members = [json.loads(line)["members"] for line in written.tasks.read_text().splitlines()]
    assert [m[0]["instance"] for m in members] == ["s[n=0]", "s[n=1]", "s[n=2]"]
    assert members[0][0]["outputs"] == [["out/0", "tmp/out-0"]]


def test_results_file_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    record = {"instance": "a", "attempt": 1, "exit_status": 0, "failure": None, "wall": 0.1}
    path.write_text(json.dumps(record) + "\n" + '{"instance": "b", "att')
    results = ResultsFile(str(path))
    assert results.read() == 1 and set(results.records) == {("a", 1)}
    with open(path, "a") as f:
        f.write('empt": 2, "exit_status": 137, "failure": "oom", "message": "out of memory"}\n')
    assert results.read() == 1
    handle = JobHandle("slurm", "1_0", "b", 2)
    status = from_record(handle, results.records[("b", 2)])
    assert status.state is JobState.FAILED and status.failure == "oom"
    assert from_record(JobHandle("slurm", "1_0", "a", 1), record).state is JobState.SUCCEEDED


def test_final_states_without_a_record():
    h = JobHandle("slurm", "9_0", "a", 1)
    assert without_record(h, "OUT_OF_MEMORY", "9_0").failure == "oom"
    assert without_record(h, "TIMEOUT", "9_0").failure == "timeout"
    assert without_record(h, "CANCELLED", "9_0").failure == "cancelled"
    assert without_record(h, None, "9_0").failure == "lost"
    assert all(needs_resubmit(s) for s in ("NODE_FAIL", "PREEMPTED", "BOOT_FAIL", None))
    assert not any(needs_resubmit(s) for s in ("OUT_OF_MEMORY", "TIMEOUT", "CANCELLED", "FAILED"))


def test_sbatch_errors_are_told_apart():
    with pytest.raises(cli.CommandFailed) as info:
        cli.run(["sh", "-c", "echo 'sbatch: error: Batch job submission failed: Socket timed out' >&2; exit 1"])
    assert info.value.transient
    with pytest.raises(cli.CommandFailed) as info:
        cli.run(["sh", "-c", "echo 'sbatch: error: invalid partition specified: nope' >&2; exit 1"])
    assert not info.value.transient


def test_a_sif_missing_or_built_from_another_lock_is_named(tmp_path, monkeypatch):
    import hashlib

    from repropack.backends.slurm import sif

    assert "does not exist" in sif.sif_problem(str(tmp_path / "x.sif"), tmp_path)
    image = tmp_path / "x.sif"
    image.write_bytes(b"sif")
    (tmp_path / "repropack.lock").write_text("lock 1\n")
    current = "sha256:" + hashlib.sha256(b"lock 1\n").hexdigest()
    monkeypatch.setattr(sif, "labels", lambda path: {sif.LOCK_LABEL: current})
    assert sif.sif_problem(str(image), tmp_path) is None
    (tmp_path / "repropack.lock").write_text("lock 2, newer\n")
    problem = sif.sif_problem(str(image), tmp_path)
    assert "is stale" in problem and current in problem and "repropack build --apptainer" in problem
