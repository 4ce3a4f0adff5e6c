"""`repropack build` on the real engines: the quickstart image, its steps in Docker, layer reuse, bad input.

The project is locked with `--base-override local/debian:bookworm-python` (the lock records it
as such; nothing is retagged as a public name) and its wheels fetched from PyPI into a cache of
the test session. Each session builds with its own SOURCE_DATE_EPOCH, so its image IDs are its
own (a build of the same project anywhere else gives the same ID by design, and other users'
images must not be touched); they carry that epoch as a label and are removed after.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from _engines import LOCAL_BASE_IMAGE

CLI = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[2]
TAG = "repropack-test/quickstart:build"

pytestmark = [pytest.mark.docker, pytest.mark.network]


def cli(project: Path, *args: str, env: dict | None = None, umask: int | None = None, timeout: float = 900):
    def preexec():
        if umask is not None:
            os.umask(umask)

    return subprocess.run([*CLI, *args, "-C", str(project)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def build_json(project: Path, *args: str, **kwargs) -> dict:
    return json.loads(ok(cli(project, "build", "--json", *args, **kwargs)).stdout)


def copy_quickstart(target: Path) -> Path:
    import shutil

    shutil.copytree(REPO / "examples" / "quickstart", target,
                    ignore=lambda d, names: {"results", ".repropack", "__pycache__"} & set(names))
    return target


# One per session, shared by every module importing these fixtures, so each cleanup finds all of them.
SESSION_EPOCH = random.randrange(10**8, 10**9)


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory) -> dict:
    """The environment of every build: a session wheel cache and the session's SOURCE_DATE_EPOCH."""
    return {"REPROPACK_CACHE": str(tmp_path_factory.mktemp("wheel-cache")), "SOURCE_DATE_EPOCH": str(SESSION_EPOCH)}


@pytest.fixture(scope="session")
def locked_quickstart(tmp_path_factory, wheel_cache) -> Path:
    """A locked and fetched copy of examples/quickstart (the source for every other copy)."""
    project = copy_quickstart(tmp_path_factory.mktemp("locked") / "quickstart")
    ok(cli(project, "lock", "--base-override", LOCAL_BASE_IMAGE))
    ok(cli(project, "fetch", env=wheel_cache))
    return project


@pytest.fixture
def project(locked_quickstart, tmp_path) -> Path:
    import shutil

    target = tmp_path / "quickstart"
    shutil.copytree(locked_quickstart, target)
    return target


@pytest.fixture(scope="session")
def docker_client(wheel_cache):
    import docker

    client = docker.from_env()
    yield client
    epoch = int(wheel_cache["SOURCE_DATE_EPOCH"])
    for value in (epoch, epoch + 1):
        for image in client.images.list(filters={"label": f"io.repropack.source-date-epoch={value}"}):
            client.images.remove(image.id, force=True)
    client.close()


def run_in_image(client, image: str, command: str) -> str:
    return client.containers.run(image, ["sh", "-c", command], remove=True).decode()


def test_quickstart_image_runs_the_steps(project, wheel_cache, docker_client):
    record = build_json(project, "--tag", TAG, env=wheel_cache)
    image = docker_client.images.get(TAG)
    assert image.id == record["image"]["id"] == record["docker"]["id"]
    labels = image.labels
    assert labels["org.opencontainers.image.title"] == "quickstart"
    assert labels["org.opencontainers.image.base.name"] == LOCAL_BASE_IMAGE
    assert labels["io.repropack.lock.sha256"].startswith("sha256:")
    assert labels["io.repropack.manifest.sha256"].startswith("sha256:")
    assert image.attrs["Config"]["WorkingDir"] == "/work"
    out = run_in_image(docker_client, TAG, (
        "set -e; mkdir -p results;"
        "for s in alpha beta gamma; do python scripts/count.py --min-length 3 data/$s.txt results/$s.count; done;"
        "python scripts/summary.py results/alpha.count results/beta.count results/gamma.count;"
        "echo; command -v python; python -c 'import tabulate; print(tabulate.__version__)'"))
    assert "/opt/envs/default/bin/python" in out
    assert "0.9.0" in out
    assert "alpha" in out and "gamma" in out  # the summary table names every sample
    path = Path(record["path"])
    assert path.parent == project / ".repropack" / "builds" and (path.parent / "latest.json").is_file()


def test_no_change_rebuild_reuses_everything(project, wheel_cache, docker_client):
    first = build_json(project, "--tag", TAG, env=wheel_cache)
    second = build_json(project, "--tag", TAG, env=wheel_cache)
    assert second["image"]["id"] == first["image"]["id"]
    assert all(layer["reused"] for layer in second["image"]["layers"])
    assert second["docker"]["loaded"] is False  # the engine already had this exact image


def test_code_only_change_rebuilds_only_the_last_layer(project, wheel_cache, docker_client):
    before = build_json(project, "--tag", TAG, env=wheel_cache)
    script = project / "scripts" / "count.py"
    script.write_text(script.read_text() + "\n# a comment changes the code, not the environment\n")
    after = build_json(project, "--tag", TAG, env=wheel_cache)
    old, new = before["image"]["layers"], after["image"]["layers"]
    assert before["image"]["base"]["layers"] == after["image"]["base"]["layers"]
    assert [l["diff_id"] for l in old[:-1]] == [l["diff_id"] for l in new[:-1]]
    assert all(l["reused"] for l in new[:-1])
    assert old[-1]["diff_id"] != new[-1]["diff_id"]
    assert before["image"]["id"] != after["image"]["id"]
    engine_layers = docker_client.images.get(after["image"]["id"]).attrs["RootFS"]["Layers"]
    assert engine_layers[:-1] == docker_client.images.get(before["image"]["id"]).attrs["RootFS"]["Layers"][:-1]


def test_secrets_never_reach_a_layer(project, wheel_cache, docker_client):
    manifest = project / "repropack.toml"
    manifest.write_text(manifest.read_text().replace('sources = ["scripts/count.py"]', 'sources = ["scripts"]'))
    ok(cli(project, "lock", "--base-override", LOCAL_BASE_IMAGE))
    planted = {".env": "TOKEN=x", "scripts/.env": "TOKEN=y", "scripts/.ssh/id_rsa": "KEY", "scripts/.aws/credentials": "A",
               "scripts/server.pem": "PEM", "scripts/id_ed25519": "KEY", ".aws/config": "A"}
    for rel, text in planted.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    record = build_json(project, "--tag", TAG, env=wheel_cache)
    layer = project / ".repropack/build/layers" / (record["image"]["layers"][-1]["diff_id"][7:] + ".tar")
    with tarfile.open(layer) as tar:
        names = tar.getnames()
    assert "work/scripts/count.py" in names and "work/scripts/summary.py" in names
    for rel in planted:
        assert f"work/{rel}" not in names
    listing = run_in_image(docker_client, TAG, "find / -xdev \\( -name '*.pem' -path '/work/*' \\) -o -name id_rsa -o -name .env")
    assert listing.strip() == ""
    assert any("scripts/.ssh/id_rsa" in w and "secret" in w for w in record["warnings"])


def test_dead_docker_host_is_a_clear_error(project, wheel_cache):
    done = cli(project, "build", env={**wheel_cache, "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 1
    assert "docker is not available" in done.stderr and "/nonexistent/docker.sock" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_image_reference(project, wheel_cache):
    done = cli(project, "build", "--tag", "Not A/Valid:Ref", env=wheel_cache)
    assert done.returncode == 2
    assert "invalid image reference 'Not A/Valid:Ref'" in done.stderr


def test_unpinned_base_is_refused_with_how_to_pin(project, wheel_cache):
    lock = project / "repropack.lock"
    text = lock.read_text()
    start = text.index("[base-image]")
    end = text.index("\n\n", start)
    lock.write_text(text[:start] + '[base-image]\nreference = "python:3.11-slim"\nsource = "unpinned"' + text[end:])
    done = cli(project, "build", env=wheel_cache)
    assert done.returncode == 1
    assert "not pinned by digest" in done.stderr and "--base-override" in done.stderr


def test_stale_lock_is_refused(project, wheel_cache):
    manifest = project / "repropack.toml"
    manifest.write_text(manifest.read_text().replace("tabulate ==0.9.0", "tabulate ==0.8.10"))
    done = cli(project, "build", env=wheel_cache)
    assert done.returncode == 4 and "stale" in done.stderr


def test_full_disk_during_export_leaves_nothing_tagged(project, wheel_cache, docker_client, monkeypatch):
    """An ENOSPC while the archive is written: no archive, no new image, the tag still on the old one."""
    import errno

    from repropack.build import image as image_mod
    from repropack.build.builder import BuildOptions
    from repropack.build.pipeline import build
    from repropack.errors import BuildError

    before = build_json(project, "--tag", TAG, env=wheel_cache)
    monkeypatch.setenv("REPROPACK_CACHE", wheel_cache["REPROPACK_CACHE"])
    new_epoch = str(int(wheel_cache["SOURCE_DATE_EPOCH"]) + 1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", new_epoch)  # another image ID, not yet in the engine
    real = image_mod._add_member

    def add_member(tar, name, content):
        if name.endswith("layer.tar"):
            tar.fileobj.write(b"\0" * 4096)  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tar, name, content)

    monkeypatch.setattr(image_mod, "_add_member", add_member)
    with pytest.raises(BuildError, match="disk is full; nothing was loaded or tagged"):
        build(project, BuildOptions(tag=TAG))
    images = project / ".repropack/build/images"
    assert not images.exists() or list(images.iterdir()) == []
    assert docker_client.images.list(filters={"label": f"io.repropack.source-date-epoch={new_epoch}"}) == []
    assert docker_client.images.get(TAG).id == before["image"]["id"]
    assert json.loads((project / ".repropack/builds/latest.json").read_text())["image"]["id"] == before["image"]["id"]


def test_containerfile_with_a_user_snippet(project, wheel_cache, docker_client):
    (project / "Containerfile.snippet").write_text('RUN echo "snippet ran" > /etc/repropack-snippet\n')
    tag = "repropack-test/quickstart:containerfile"
    record = build_json(project, "--containerfile", "--tag", tag, env=wheel_cache)
    try:
        assert record["image"]["reproducible"] is False
        rendered = (project / ".repropack/build/context/Containerfile").read_text()
        assert "ADD workflow.tar /" in rendered and rendered.rstrip().endswith("/etc/repropack-snippet")
        out = run_in_image(docker_client, tag, "cat /etc/repropack-snippet; python -c 'import tabulate; print(tabulate.__version__)'; ls /work/scripts")
        assert out.split() == ["snippet", "ran", "0.9.0", "count.py", "summary.py"]
    finally:
        docker_client.images.remove(record["image"]["id"], force=True)


def test_containerfile_template_error_names_file_and_line(project, wheel_cache):
    (project / "Containerfile.in").write_text("FROM $base\nRUN echo ${nothing_like_this}\n")
    done = cli(project, "build", "--containerfile", env=wheel_cache)
    assert done.returncode == 1
    assert f"{project / 'Containerfile.in'}:2: unknown placeholder $nothing_like_this" in done.stderr


def test_conda_environment_image(tmp_path, wheel_cache, docker_client):
    """examples/conda-local: conda packages linked at /opt/envs/default with the prefix rewritten."""
    import shutil

    project = shutil.copytree(REPO / "examples" / "conda-local", tmp_path / "conda-local",
                              ignore=lambda d, names: {"results", ".repropack"} & set(names))
    manifest = project / "repropack.toml"
    manifest.write_text(manifest.read_text() + '\n[image]\nbase = "debian:bookworm-slim"\n')
    ok(cli(project, "lock", "--base-override", LOCAL_BASE_IMAGE))
    ok(cli(project, "fetch", env=wheel_cache))
    record = build_json(project, "--tag", "repropack-test/conda-local:build", env=wheel_cache)
    out = run_in_image(docker_client, "repropack-test/conda-local:build",
                       "greet; head -2 /opt/envs/default/bin/greet")
    assert out.splitlines()[:3] == ["hello from greet-data 1.1.0", "#!/bin/sh", "# prefix: /opt/envs/default"]
    assert str(tmp_path) not in run_in_image(docker_client, record["image"]["id"], "cat /opt/envs/default/conda-meta/*.json")
