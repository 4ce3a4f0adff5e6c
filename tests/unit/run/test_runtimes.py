"""Command building for the local runtimes (no engine needed)."""

import os
import subprocess
from pathlib import Path

import pytest
from repropack.backends.base import Job, JobResources
from repropack.backends.resources import batch_requirements, slurm_flags
from repropack.backends.runtimes import (
    INNER,
    MOUNT_MISMATCH,
    apptainer_argv,
    apptainer_env,
    docker_run_kwargs,
    host_argv,
    inner_argv,
)
from repropack.errors import RunError
from repropack.run.attempt import render_script, step_env

PROJECT = Path("/data/my project")
ATTEMPT = PROJECT / ".repropack/runs/r1/count-1/attempt-2"


def _job(**over) -> Job:
    env = step_env(cpus=2, home=ATTEMPT / "home", tmp=ATTEMPT / "tmp", run_id="r1", path="/usr/bin:/bin",
                   passthrough=("KEEP",), caller={"KEEP": "yes", "SECRET": "no", "PATH": "/x"})
    base = dict(instance_id="count[sample=a]", attempt=2, run_id="r1", project=PROJECT, attempt_dir=ATTEMPT,
                script="echo hi\n", env=env, resources=JobResources(cpus=2, memory=2_000_000_000, time=60),
                runtime="docker", image="local/img:1", writable=(PROJECT / ".repropack/runs/r1/count-1",),
                runtime_flags=("--userns",), labels={"repropack.run": "r1"})
    base.update(over)
    return Job(**base)


def test_fixed_surroundings_and_nothing_else_from_the_caller():
    env = _job().env
    assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC" and env["PYTHONHASHSEED"] == "0"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert env["HOME"].endswith("attempt-2/home") and env["TMPDIR"].endswith("attempt-2/tmp")
    assert env["KEEP"] == "yes"  # passed by the profile
    assert "SECRET" not in env
    assert env["PATH"] == "/usr/bin:/bin"


def test_host_argv_runs_bash_strict():
    job = _job(runtime="host")
    assert host_argv(job) == ["bash", "-euo", "pipefail", str(ATTEMPT / "script.sh")]


def test_docker_kwargs_mount_project_read_only_and_outputs_writable():
    kw = docker_run_kwargs(_job(), uid=1000, gid=1001)
    assert kw["user"] == "1000:1001"
    mounts = {m["Target"]: m for m in kw["mounts"]}
    assert mounts[str(PROJECT)] == {"Target": str(PROJECT), "Source": str(PROJECT), "Type": "bind", "ReadOnly": True}
    assert mounts[str(PROJECT / ".repropack/runs/r1/count-1")]["ReadOnly"] is False
    assert all(m["Type"] == "bind" for m in kw["mounts"])  # never a volume: dockerd would create a missing source
    assert kw["working_dir"] == str(PROJECT)
    assert kw["command"][:3] == ["bash", "-c", INNER]
    assert kw["command"][4:] == [str(ATTEMPT / "script.sh"), str(ATTEMPT / "stdout"), str(ATTEMPT / "stderr"),
                                 "/proc/self/mountinfo"]  # no writable_ids in this job: nothing checked
    assert kw["labels"] == {"repropack.run": "r1"}
    assert "PATH" not in kw["environment"]  # the image's PATH
    assert kw["environment"]["TZ"] == "UTC"
    assert kw["mem_limit"] == 2_000_000_000 and kw["nano_cpus"] == 2_000_000_000
    assert kw["detach"] is True


def test_docker_needs_an_image():
    with pytest.raises(RunError, match="no image"):
        docker_run_kwargs(_job(image=None), uid=0, gid=0)


def test_apptainer_argv_cleanenv_containall_binds_and_flags():
    job = _job(runtime="apptainer", image="/sifs/x.sif")
    argv = apptainer_argv(job)
    assert argv[:5] == ["apptainer", "exec", "--cleanenv", "--containall", "--userns"]
    assert f"{PROJECT}:{PROJECT}:ro" in argv
    w = PROJECT / ".repropack/runs/r1/count-1"
    assert f"{w}:{w}:rw" in argv
    assert argv[argv.index("--pwd") + 1] == str(PROJECT)
    sif = argv.index("/sifs/x.sif")
    assert argv[sif + 1 : sif + 4] == ["bash", "-c", INNER]
    env = apptainer_env(job)
    assert env["APPTAINERENV_TZ"] == "UTC" and env["APPTAINERENV_OMP_NUM_THREADS"] == "2"
    assert "APPTAINERENV_HOME" not in env and "APPTAINERENV_PATH" not in env
    assert env["REPROPACK_RUN_ID"] == "r1"


def test_apptainer_refuses_paths_that_break_bind_syntax():
    with pytest.raises(RunError, match="cannot bind"):
        apptainer_argv(_job(runtime="apptainer", project=Path("/a,b")))


def test_script_keeps_an_odd_id_on_one_comment_line():
    script = render_script("x[v=a\nrm -rf /]", 1, "true")
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines[1].startswith("# repropack step ") and "\\n" in lines[1]
    assert lines[2:] == ["set -euo pipefail", "true"]


def test_resource_table_for_batch_schedulers():
    r = JobResources(cpus=4, memory=1_500_000_000, time=90, gpus=1)
    assert slurm_flags(r) == ["--cpus-per-task=4", "--mem=1500M", "--time=2", "--gpus=1"]
    reqs = batch_requirements(r)
    assert {"type": "MEMORY", "value": "1431"} in reqs["resourceRequirements"]
    assert reqs["timeout"] == {"attemptDurationSeconds": 90}


def _ident(path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


@pytest.mark.parametrize("swapped", [False, True])
def test_the_container_command_checks_each_writable_mount_before_the_step(tmp_path, swapped):
    """INNER run by a real bash over a mount table: a writable folder mount that is not a checked
    folder (a link swapped in before the engine mounted it) stops it before the step."""
    attempt, checked, other = tmp_path / "attempt", tmp_path / "checked", tmp_path / "a b"
    for d in (attempt, checked, other):
        d.mkdir()
    (attempt / "script.sh").write_text("echo ran > ran\n")
    mounted = other if swapped else checked
    table = tmp_path / "mountinfo"
    table.write_text(
        "1 0 8:1 / / rw,relatime - overlay overlay rw\n"
        "2 1 0:5 / /proc rw,nosuid - proc proc rw\n"
        f"3 1 8:1 /etc/hosts {tmp_path}/hosts-file rw - ext4 /dev/sda rw\n"  # a file: not checked
        f"4 1 8:1 {tmp_path} {tmp_path} ro,relatime - ext4 /dev/sda rw\n"  # read-only: not checked
        f"5 1 8:1 {attempt} {attempt} rw,relatime - ext4 /dev/sda rw\n"
        f"6 1 8:1 /x {str(mounted).replace(' ', chr(92) + '040')} rw,relatime - ext4 /dev/sda rw\n")
    job = _job(attempt_dir=attempt, writable=(attempt, checked), writable_ids=(_ident(attempt), _ident(checked)))
    assert docker_run_kwargs(job, uid=0, gid=0)["command"] == inner_argv(job)
    done = subprocess.run(inner_argv(job, mountinfo=str(table)), cwd=attempt, capture_output=True, text=True)
    if swapped:
        assert done.returncode == MOUNT_MISMATCH
        assert f"the writable mount {other} is not a folder the runner checked" in done.stderr
        assert not (attempt / "ran").exists() and not (attempt / "stdout").exists()
    else:
        assert done.returncode == 0, done.stderr
        assert (attempt / "ran").read_text() == "ran\n"


def test_docker_network_mode_from_the_environment(monkeypatch):
    monkeypatch.delenv("REPROPACK_DOCKER_NETWORK", raising=False)
    assert "network_mode" not in docker_run_kwargs(_job(), uid=0, gid=0)
    monkeypatch.setenv("REPROPACK_DOCKER_NETWORK", "none")  # what `repropack rerun` sets
    assert docker_run_kwargs(_job(), uid=0, gid=0)["network_mode"] == "none"
