"""The done-when of the publication archive (issue 13): the quickstart packed with its images and
inputs reruns identical, in another folder, three ways: on the host, in Docker with the project's
image removed from the engine first and the step containers given no network, and in Apptainer;
each under `unshare -n` (no network at all) with HOME, XDG_CACHE_HOME, UV_CACHE_DIR and the
repropack cache empty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from _engines import require_tool

from test_build import CLI, cli, docker_client, locked_quickstart, ok, project, wheel_cache  # noqa: F401 - fixtures

pytestmark = [pytest.mark.docker, pytest.mark.apptainer, pytest.mark.network]


@pytest.fixture(scope="module")
def packed(locked_quickstart, wheel_cache, tmp_path_factory):
    work = tmp_path_factory.mktemp("archive-qs")
    root = work / "quickstart"
    shutil.copytree(locked_quickstart, root)
    ok(cli(root, "run", env=wheel_cache))
    ok(cli(root, "build", "--docker", "--apptainer", "--tag", "repropack-test/quickstart:archive", env=wheel_cache))
    archive = work / "quickstart-1.0.0.tar.zst"
    ok(cli(root, "pack", "--with-images", "--with-inputs", "-o", str(archive), env=wheel_cache))
    record = json.loads((root / ".repropack" / "builds" / "latest.json").read_text())
    return archive, record["image"]["id"]


def empty_home(tmp_path) -> dict:
    env = {}
    for name in ("HOME", "XDG_CACHE_HOME", "UV_CACHE_DIR", "REPROPACK_CACHE"):
        env[name] = str(tmp_path / name.lower())
        os.mkdir(env[name])
    return env


def offline_rerun(archive, target, profile, env):
    require_tool("unshare", "util-linux")
    argv = ["unshare", "-n", *CLI, "rerun", str(archive), "--dir", str(target), "--profile", profile, "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env={**os.environ, **env})
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    verdict = json.loads(done.stdout)
    assert verdict["identical"] and verdict["counts"] == {"identical": 4}, verdict
    assert os.listdir(env["REPROPACK_CACHE"]) == []  # the packages came from the archive's own cache
    return verdict


@pytest.mark.parametrize("profile", ["local", "docker", "apptainer"])
def test_quickstart_archive_reruns_identical_offline(packed, tmp_path, profile, docker_client):
    archive, image_id = packed
    if profile == "docker":
        docker_client.images.remove(image_id, force=True)  # the reader's engine has never seen it
    verdict = offline_rerun(archive, tmp_path / "reader", profile, empty_home(tmp_path))
    if profile != "local":
        assert verdict["image"]["id"] == image_id
    if profile == "docker":
        assert docker_client.images.get(image_id).id == image_id  # loaded from the archive, same ID


def test_a_bundled_image_whose_id_differs_is_refused_and_nothing_is_left(packed, tmp_path, capsys):
    from repropack.archive import format as fmt
    from repropack.archive.reader import read_archive
    from repropack.archive.writer import tree_sources, write_archive
    from repropack.cli import main

    archive, image_id = packed
    unpacked = tmp_path / "u"
    assert main(["unpack", str(archive), str(unpacked)]) == 0
    index = read_archive(archive).index
    extra = {k: v for k, v in index.items() if k not in ("members", "parts", "format", "tool")}
    extra["image"] = {**extra["image"], "id": "sha256:" + "0" * 64}  # what the index records, not what loads
    forged = tmp_path / "forged.tar.zst"
    with forged.open("wb") as out:
        write_archive(out, [s for s in tree_sources(unpacked, "", "x") if s.path not in fmt.RESERVED],
                      extra_index=extra)
    target = tmp_path / "reader"
    assert main(["rerun", str(forged), "--dir", str(target), "--profile", "docker"]) == 8
    assert "not the recorded sha256:000" in capsys.readouterr().err
    assert not target.exists()
