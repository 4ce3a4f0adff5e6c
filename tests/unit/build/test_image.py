"""Canonical config, manifest, references and the docker-save archive."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest

from repropack.build.image import (
    ImageSpec,
    canonical_json,
    make_config,
    make_manifest,
    merge_env,
    parse_reference,
    write_docker_archive,
)
from repropack.errors import UsageError

BASE = {
    "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["/bin/bash"], "Labels": {"base": "1"}},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
    "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "import", "author": "x"}],
}


def _spec(**kw):
    defaults = dict(epoch=1_700_000_000, workdir="/work", env={"PATH": "/opt/envs/d/bin:/usr/bin:/bin"},
                    labels={"org.opencontainers.image.title": "q"}, history=["env d", "workflow files"])
    defaults.update(kw)
    return ImageSpec(**defaults)


def test_config_is_canonical_and_independent_of_input_order():
    diff_ids = ["sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64]
    one = make_config(BASE, diff_ids, _spec())
    shuffled = json.loads(json.dumps(BASE))
    shuffled["config"] = dict(reversed(list(shuffled["config"].items())))
    two = make_config(shuffled, diff_ids, _spec(labels={"org.opencontainers.image.title": "q"}))
    assert one == two
    config = json.loads(one)
    assert canonical_json(config) == one
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert config["config"]["Env"] == ["PATH=/opt/envs/d/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
    assert config["config"]["Cmd"] == ["/bin/bash"]
    assert config["config"]["WorkingDir"] == "/work"
    assert config["config"]["Labels"] == {"base": "1", "org.opencontainers.image.title": "q"}
    assert [h["created_by"] for h in config["history"]] == ["import", "env d", "workflow files"]
    assert "author" not in config["history"][0]


def test_config_changes_with_epoch():
    diff_ids = ["sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64]
    assert make_config(BASE, diff_ids, _spec()) != make_config(BASE, diff_ids, _spec(epoch=1))


def test_merge_env_keeps_base_order_and_appends_new_keys_sorted():
    assert merge_env(["B=1", "A=2"], {"Z": "z", "A": "3", "C": "c"}) == ["B=1", "A=3", "C=c", "Z=z"]


def test_manifest_is_deterministic():
    m = make_manifest("sha256:" + "c" * 64, 10, [("sha256:" + "d" * 64, 20)])
    assert m == make_manifest("sha256:" + "c" * 64, 10, [("sha256:" + "d" * 64, 20)])
    assert json.loads(m)["layers"][0]["size"] == 20


@pytest.mark.parametrize(
    "text,repository,tag",
    [
        ("quickstart", "quickstart", None),
        ("lab/quickstart:1.0", "lab/quickstart", "1.0"),
        ("127.0.0.1:5000/lab/q:v1", "127.0.0.1:5000/lab/q", "v1"),
        ("localhost/q", "localhost/q", None),
    ],
)
def test_valid_references(text, repository, tag):
    ref = parse_reference(text)
    assert (ref.repository, ref.tag) == (repository, tag)
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "Quickstart", "lab//q", "q:", "q:bad tag", "-q", "q@sha256:123", "a/b:c:d"])
def test_invalid_references(text):
    with pytest.raises(UsageError, match="invalid image reference"):
        parse_reference(text)


def test_archive_layout_and_determinism(tmp_path):
    layer = tmp_path / "l.tar"
    layer.write_bytes(b"\0" * 1024)
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    config = b'{"x":1}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    write_docker_archive(tmp_path / "a.tar", config, digest, [(diff_id, layer)], tags=["q:1"])
    write_docker_archive(tmp_path / "b.tar", config, digest, [(diff_id, layer)], tags=["q:1"])
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    with tarfile.open(tmp_path / "a.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest == [{"Config": digest[7:] + ".json", "Layers": [diff_id[7:] + "/layer.tar"], "RepoTags": ["q:1"]}]
        assert tar.extractfile(digest[7:] + ".json").read() == config
    assert not list(tmp_path.glob("*.part"))
