"""The repository's Containerfile builds an image that runs repropack, with no network during the build."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

import repropack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def image_tag():
    import docker

    tag = f"repropack-test/self:{uuid.uuid4().hex[:12]}"
    yield tag
    client = docker.from_env(timeout=120)
    try:
        client.images.remove(tag, force=True)
    except docker.errors.ImageNotFound:
        pass
    client.images.prune(filters={"dangling": True, "label": "org.repropack.stage=install"})
    client.close()


@pytest.mark.docker
@pytest.mark.network  # the wheelhouse is downloaded (hash-checked) before the offline build
def test_containerfile_builds_offline_on_the_local_base(base_image, tmp_path, image_tag):
    wheelhouse = tmp_path / "wheelhouse"
    subprocess.run([str(REPO / "scripts" / "wheelhouse.sh"), str(wheelhouse)], check=True, timeout=900)
    requirements = (wheelhouse / "requirements.txt").read_text().splitlines()
    assert all(" --hash=sha256:" in line for line in requirements)
    assert any(line.startswith("repropack==") for line in requirements)

    build = subprocess.run(
        ["docker", "build", "--network", "none", "--build-arg", f"BASE={base_image}",
         "-f", str(REPO / "Containerfile"), "-t", image_tag, str(wheelhouse)],
        capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    run = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image_tag, "--version"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"repropack, version {repropack.__version__}"

    # Only the venv reached the final image: neither the wheelhouse nor pip.
    probe = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image_tag, "-c",
         "test ! -e /wheelhouse && ! python3 -m pip --version 2>/dev/null && echo clean"],
        capture_output=True, text=True, timeout=120,
    )
    assert probe.stdout.strip() == "clean", probe.stderr
