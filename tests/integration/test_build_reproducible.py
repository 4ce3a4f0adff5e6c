"""Two builds of the same lock and files, in two directories, with other mtimes and another umask:
one image ID, one pushed manifest digest, one SIF content digest; the SIF runs the steps.
Also: apptainer missing from PATH and a closed registry port give clear errors.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from test_build import build_json, cli, docker_client, locked_quickstart, wheel_cache  # noqa: F401 - fixtures

from _engines import REGISTRY

pytestmark = [pytest.mark.docker, pytest.mark.network]
TAG = "repropack-test/quickstart:repro"


def _copy_with_other_mtimes(source, target, mtime: int):
    shutil.copytree(source, target)
    for directory, dirs, files in os.walk(target):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), (mtime, mtime), follow_symlinks=False)
    return target


def _remove(client, image_id: str) -> None:
    import docker.errors

    try:
        client.images.remove(image_id, force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.fixture(scope="module")
def two_builds(locked_quickstart, wheel_cache, tmp_path_factory, docker_client):  # noqa: F811
    records = []
    for index, (umask, mtime) in enumerate(((0o022, 1_000_000_000), (0o077, 1_750_000_000))):
        project = _copy_with_other_mtimes(locked_quickstart, tmp_path_factory.mktemp(f"dir{index}") / "qs", mtime)
        if index:  # the second build finds no image to reuse: it must load its own
            _remove(docker_client, records[0]["image"]["id"])
        records.append(build_json(project, "--docker", "--apptainer", "--tag", TAG, "--push", REGISTRY, env=wheel_cache,
                                  umask=umask, timeout=1800))
    return records


@pytest.mark.registry
@pytest.mark.apptainer
def test_one_image_id_one_pushed_digest_one_sif_content(two_builds):
    first, second = two_builds
    assert first["project"] != second["project"]
    assert second["docker"]["loaded"] is True  # really rebuilt and loaded, not found in the engine
    assert first["image"]["id"] == second["image"]["id"]
    assert first["pushed"]["digest"] == second["pushed"]["digest"]
    assert first["sif"]["content_digest"] == second["sif"]["content_digest"]
    assert first["sif"]["sha256"] != second["sif"]["sha256"]  # Apptainer's UUID and times: why content is compared


@pytest.mark.registry
def test_pushed_image_pulls_by_digest_to_the_same_id(two_builds, docker_client):  # noqa: F811
    reference = two_builds[0]["pushed"]["reference"]
    repository, digest = reference.split("@")
    image = docker_client.images.pull(repository, tag=digest)
    try:
        assert image.id == two_builds[0]["image"]["id"]
    finally:
        docker_client.images.remove(reference)


@pytest.mark.apptainer
def test_steps_run_in_the_sif(two_builds):
    sif = two_builds[1]["sif"]["path"]
    out = subprocess.run(
        ["apptainer", "exec", "--userns", "--pwd", "/work", sif, "sh", "-c",
         "python scripts/count.py --min-length 3 data/alpha.txt /dev/stdout | head -3; command -v python"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "/opt/envs/default/bin/python"
    assert len(lines) == 4 and all("\t" in line for line in lines[:3])


@pytest.mark.apptainer
def test_apptainer_missing_from_path(locked_quickstart, wheel_cache, tmp_path):  # noqa: F811
    project = shutil.copytree(locked_quickstart, tmp_path / "qs")
    bare = tmp_path / "bin"
    bare.mkdir()
    done = cli(project, "build", "--apptainer", "--no-docker", env={**wheel_cache, "PATH": str(bare)})
    assert done.returncode == 1
    assert "apptainer is not available" in done.stderr and "PATH" in done.stderr


def test_closed_registry_port(locked_quickstart, wheel_cache, tmp_path):  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and closed again once the socket is
    project = shutil.copytree(locked_quickstart, tmp_path / "qs")
    done = cli(project, "build", "--no-docker", "--push", f"127.0.0.1:{port}", env=wheel_cache)
    assert done.returncode == 1
    assert f"registry is not available: nothing answers at http://127.0.0.1:{port}" in done.stderr
