"""The same steps on the host, in Docker and in Apptainer give byte-identical outputs."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from runhelp import journal, left_after, processes_with_marker, repropack, share_sif, write_project

# A step that writes outside its declared outputs.
SNEAKY = """
[[steps]]
name = "sneaky"
run = "echo x > undeclared.txt; echo ok > {outputs}"
outputs = ["out/ok"]
"""

_share_sif = share_sif  # the name other test modules imported before base_sif moved to tests/conftest.py

PROFILES = """
[profiles.docker]
runtime = "docker"
[profiles.apptainer]
runtime = "apptainer"
apptainer-flags = ["--userns"]
"""


def _outputs(root):
    return {r["id"]: r["outputs"] for r in journal(root) if r["t"] == "done"}


def _light_project(root, image):
    from test_run_basic import FILES, MANIFEST

    return write_project(root, MANIFEST + f'[image]\nname = "{image}"\n' + PROFILES, FILES)


def _run_everywhere(root, runtimes):
    seen = {}
    for runtime in runtimes:
        args = ["run", "--no-resume", "--json"] + ([] if runtime == "host" else ["--profile", runtime])
        done = repropack(root, *args, check=True, timeout=1800)
        assert json.loads(done.stdout)["counts"]["failed"] == 0
        runs = [r for r in journal(root) if r["t"] == "start"]
        assert runs[-1]["runtime"] == runtime
        seen[runtime] = _outputs(root)
        assert repropack(root, "verify").returncode == 0
    return seen


@pytest.mark.docker
@pytest.mark.apptainer
def test_steps_give_identical_checksums_on_host_docker_and_apptainer(tmp_path, base_image, base_sif):
    root = _light_project(tmp_path / "p", base_image)
    share_sif(root, base_sif)
    seen = _run_everywhere(root, ("host", "docker", "apptainer"))
    assert seen["host"] == seen["docker"] == seen["apptainer"]
    assert len(seen["host"]) == 4


@pytest.mark.docker
def test_docker_mounts_the_project_read_only(tmp_path, base_image):
    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [image]
        name = "{base_image}"
        {SNEAKY}
        {PROFILES}
    """)
    done = repropack(root, "run", "--profile", "docker")
    assert done.returncode == 1
    assert "Read-only file system" in done.stderr
    assert not (root / "undeclared.txt").exists()


def test_host_reports_undeclared_files(tmp_path):
    root = write_project(tmp_path / "p", '[project]\nname = "p"\n' + SNEAKY)
    done = repropack(root, "run", check=True)
    assert "undeclared.txt appeared in the project but no step declares it" in done.stderr


@pytest.mark.docker
def test_killed_runner_leaves_no_container(tmp_path, base_image):
    import time

    import docker

    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [image]
        name = "{base_image}"
        [[steps]]
        name = "wait"
        run = "sleep 120; touch {{outputs}}"
        foreach = {{ n = ["1", "2"] }}
        outputs = ["out/{{n}}"]
        {PROFILES}
    """)
    from runhelp import CLI

    runner = subprocess.Popen([*CLI, "run", "--profile", "docker", "-C", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = docker.from_env()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            latest = root / ".repropack/runs/latest"
            if latest.exists():
                run_id = latest.read_text().strip()
                if len(client.containers.list(filters={"label": f"repropack.run={run_id}"})) == 2:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the containers never started")
        runner.kill()
        runner.wait()
        assert left_after(lambda: client.containers.list(all=True, filters={"label": f"repropack.run={run_id}"})) == []
        assert left_after(lambda: processes_with_marker(run_id)) == []
    finally:
        client.close()


@pytest.mark.docker
@pytest.mark.apptainer
@pytest.mark.network
def test_quickstart_on_host_docker_and_apptainer(tmp_project, base_image):
    """The issue's done-when: examples/quickstart, locked, built, run in all three runtimes."""
    root = tmp_project("quickstart")  # its manifest has the docker and apptainer profiles
    for args in (["lock", "--base-override", base_image], ["fetch"], ["build", "--apptainer"], ["build"]):
        repropack(root, *args, check=True, timeout=1800)
    seen = _run_everywhere(root, ("host", "docker", "apptainer"))
    assert seen["host"] == seen["docker"] == seen["apptainer"]
    assert "results/summary.tsv" in seen["host"]["summary"]


@pytest.mark.docker
@pytest.mark.apptainer
def test_apptainer_project_is_read_only_and_a_killed_runner_leaves_nothing(tmp_path, base_image, base_sif):
    from runhelp import CLI, last_run_id

    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [image]
        name = "{base_image}"
        {SNEAKY}
        [[steps]]
        name = "wait"
        run = "sleep 120; touch {{outputs}}"
        foreach = {{ n = ["1", "2"] }}
        outputs = ["wait/{{n}}"]
        {PROFILES}
    """)
    share_sif(root, base_sif)
    done = repropack(root, "run", "sneaky", "--profile", "apptainer")
    assert done.returncode == 1
    assert "Read-only file system" in done.stderr
    assert not (root / "undeclared.txt").exists()
    runner = subprocess.Popen([*CLI, "run", "wait", "--profile", "apptainer", "-C", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (root / ".repropack/runs/latest").exists() and last_run_id(root) != "" and len(
                processes_with_marker(last_run_id(root))) >= 2:
            break
        time.sleep(0.1)
    run_id = last_run_id(root)
    time.sleep(1)  # the containers' own processes are up
    runner.kill()
    runner.wait()
    assert left_after(lambda: processes_with_marker(run_id)) == []
    pgrep = ["pgrep", "-f", "sleep 120"]
    assert left_after(lambda: subprocess.run(pgrep, capture_output=True, text=True).stdout.split()) == []


KEYED = """
[project]
name = "keyed"
[image]
name = "{image}"
[profiles.docker]
runtime = "docker"
env-keyed = ["FOO"]
[profiles.apptainer]
runtime = "apptainer"
apptainer-flags = ["--userns"]
env-keyed = ["FOO"]
[[steps]]
name = "make"
run = "echo $FOO {{s}} > {{outputs}}"
foreach = {{ s = [{values}] }}
outputs = ["out/{{s}}.txt"]
[[steps]]
name = "gather"
run = "xargs cat < {{inputs:list}} > {{outputs}}"
inputs = ["out/{{s}}.txt"]
outputs = ["all.txt"]
"""


@pytest.mark.parametrize("runtime", [pytest.param("docker", marks=pytest.mark.docker),
                                     pytest.param("apptainer", marks=[pytest.mark.docker, pytest.mark.apptainer])])
def test_defect04_defect12_keys_in_containers(tmp_path, base_image, request, runtime):
    """Input order and env-keyed values are in the key on each container runtime; no value is recorded."""
    root = tmp_path / "p"
    write_project(root, KEYED.format(image=base_image, values='"a", "b"'))
    if runtime == "apptainer":
        share_sif(root, request.getfixturevalue("base_sif"))
    secret = "Kq7-not-in-records"
    env = {**os.environ, "FOO": secret}
    profile = ("--profile", runtime)
    repropack(root, "run", *profile, check=True, timeout=1800, env=env)
    assert (root / "all.txt").read_text() == f"{secret} a\n{secret} b\n"
    write_project(root, KEYED.format(image=base_image, values='"b", "a"'))
    dry = repropack(root, "run", "--dry-run", "--json", *profile, check=True, env={**env, "FOO": "other"})
    reasons = {e["id"]: e["reasons"] for e in json.loads(dry.stdout)["to_run"]}
    assert reasons["make[s=a]"] == ["changed env FOO"]
    dry = repropack(root, "run", "--dry-run", "--json", *profile, check=True, env=env)
    assert json.loads(dry.stdout)["to_run"] == [{"id": "gather", "reasons": ["changed input order"]}]
    repropack(root, "run", *profile, check=True, timeout=1800, env=env)
    assert (root / "all.txt").read_text() == f"{secret} b\n{secret} a\n"
    status = json.loads(repropack(root, "status", "--json", check=True).stdout)
    assert status["instances"]["gather"]["state"] == "done"
    leaked = [str(p) for p in (root / ".repropack").rglob("*")
              if p.is_file() and not p.is_symlink() and p.name != "stdout" and p.suffix != ".sif"
              and secret.encode() in p.read_bytes()]
    assert leaked == []


@pytest.mark.docker
@pytest.mark.apptainer
def test_defect07_apptainer_pipe_member_that_never_opens_fails_the_group(tmp_path, base_image, base_sif):
    """Issue 8 defect 7 on Apptainer: a pair streams; a reader that never opens fails the group, nothing hangs."""
    def pair(root, consume):
        return write_project(root, f"""
            [project]
            name = "p"
            [image]
            name = "{base_image}"
            {PROFILES}
            [[steps]]
            name = "produce"
            run = "seq 1 200000 > {{outputs}}"
            outputs = [{{ path = "tmp/stream.txt", pipe = true }}]
            [[steps]]
            name = "consume"
            run = "{consume}"
            inputs = ["tmp/stream.txt"]
            outputs = ["results/count.txt"]
        """)

    good = pair(tmp_path / "good", "wc -l < {inputs} > {outputs}")
    _share_sif(good, base_sif)
    repropack(good, "run", "--profile", "apptainer", check=True, timeout=120)
    assert (good / "results/count.txt").read_text().strip() == "200000"
    bad = pair(tmp_path / "bad", "echo never read > {outputs}")
    _share_sif(bad, base_sif)
    done = repropack(bad, "run", "--profile", "apptainer", "--json", timeout=60)
    assert done.returncode == 1, done.stderr
    instances = json.loads(done.stdout)["instances"]
    assert instances["consume"]["failure"] == "pipe"
    assert "consume exited without opening its input tmp/stream.txt" in instances["consume"]["message"]
    assert instances["produce"]["failure"] == "cancelled"
    from runhelp import last_run_id

    deadline = time.monotonic() + 10
    while processes_with_marker(last_run_id(bad)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with_marker(last_run_id(bad)) == []
