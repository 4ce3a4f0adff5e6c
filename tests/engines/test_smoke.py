"""Each real engine does real work when driven from Python (scripts/engines.sh brings them up).

Skipped where an engine is missing; failed instead under REPROPACK_REQUIRE_ENGINES=1 (CI).
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from _engines import REGISTRY

LABEL = {"repropack-test": "engines-smoke"}


@pytest.fixture(scope="module")
def docker_client():
    import docker

    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.mark.docker
def test_docker_runs_a_container_from_the_base_image(docker_client, base_image):
    out = docker_client.containers.run(
        base_image, ["python3", "-c", "import sys; print(sys.version_info[:2])"], remove=True, labels=LABEL
    )
    assert out.decode().strip() == "(3, 11)"


@pytest.mark.docker
@pytest.mark.apptainer
def test_apptainer_builds_a_sif_from_the_base_image_and_runs_it(docker_client, base_image, tmp_path):
    archive = tmp_path / "base.tar"
    with archive.open("wb") as handle:
        for chunk in docker_client.images.get(base_image).save(named=True):
            handle.write(chunk)
    sif = tmp_path / "base.sif"
    build = subprocess.run(
        ["apptainer", "-s", "build", "--mksquashfs-args", "-comp lz4", str(sif), f"docker-archive:{archive}"],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr
    # As root in this VM, exec needs --userns (root lacks CAP_SYS_RESOURCE).
    run = subprocess.run(
        ["apptainer", "-s", "exec", "--userns", str(sif), "python3", "-c", "print(open('/etc/debian_version').read())"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith("12.")


@pytest.mark.slurm
def test_sbatch_job_is_reported_completed_by_sacct(tmp_path):
    marker = tmp_path / "ran.txt"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\necho \"$SLURM_JOB_ID\" > {marker}\n")
    submit = subprocess.run(
        ["sbatch", "--parsable", "-J", "repropack-smoke", "-t", "2", "-o", str(tmp_path / "slurm-%j.out"), str(script)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    job_id = submit.stdout.strip().split(";")[0]
    state = _poll_sacct(job_id, deadline=time.monotonic() + 180)
    assert state == "COMPLETED"
    assert marker.read_text().strip() == job_id


def _poll_sacct(job_id: str, deadline: float) -> str:
    """The job's final state in accounting; polls because slurmdbd records it a moment after the end."""
    state = ""
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"], capture_output=True, text=True, timeout=30
        ).stdout.split()
        state = out[0] if out else ""
        if state and state not in {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING"}:
            return state
        time.sleep(1)
    pytest.fail(f"job {job_id} not finished in sacct before the deadline (last state {state!r})")


@pytest.mark.docker
@pytest.mark.registry
def test_image_round_trips_through_the_local_registry(docker_client, base_image):
    repository = f"{REGISTRY}/repropack-tests/smoke"
    tag = uuid.uuid4().hex[:12]
    reference = f"{repository}:{tag}"
    image = docker_client.images.get(base_image)
    image.tag(repository, tag)
    try:
        for line in docker_client.images.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in line, line
        docker_client.images.remove(reference)
        with pytest.raises(Exception):
            docker_client.images.get(reference)
        pulled = docker_client.images.pull(repository, tag=tag)
        assert pulled.id == image.id
    finally:
        try:
            docker_client.images.remove(reference)
        except Exception:
            pass
