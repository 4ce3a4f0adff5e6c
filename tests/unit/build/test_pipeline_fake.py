"""The load/tag order of the pipeline with a fake engine implementing the ContainerEngine methods."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from repropack.build.base import BaseImage
from repropack.build.builder import Layer, Plan
from repropack.build.layers import file_entries, write_layer
from repropack.build.pipeline import load_into_engine
from repropack.errors import BuildError


class FakeEngine:
    name = "fake"

    def __init__(self, *, known=(), load_as=None):
        self.images = set(known)
        self.load_as = load_as
        self.loaded_members: list[list[str]] = []
        self.tags: dict[str, str] = {}

    def image_id(self, ref):
        return ref if ref in self.images else None

    def load(self, archive):
        with tarfile.open(archive) as tar:
            self.loaded_members.append(sorted(tar.getnames()))
            manifest = json.load(tar.extractfile("manifest.json"))[0]
            config = tar.extractfile(manifest["Config"]).read()
        image_id = self.load_as or "sha256:" + hashlib.sha256(config).hexdigest()
        self.images.add(image_id)
        return image_id

    def tag(self, image_id, ref):
        self.tags[ref] = image_id


def _plan(tmp_path: Path) -> Plan:
    layers = []
    for name in ("base", "env", "work"):
        (tmp_path / name).write_text(name)
        info = write_layer(file_entries([(f"{name}/f", tmp_path / name)]), tmp_path / f"{name}.tar", epoch=0)
        layers.append(Layer(info.diff_id, info.size, tmp_path / f"{name}.tar", name))
    config = json.dumps({"rootfs": {"diff_ids": [l.diff_id for l in layers]}}).encode()
    base = BaseImage("base", "sha256:" + "b" * 64, "sha256:" + "b" * 64, {}, ((layers[0].diff_id, layers[0].path),), ())
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    return Plan(tmp_path, "q:1", 0, base, layers[1:], config, image_id, {})


def test_loads_then_tags(tmp_path):
    plan = _plan(tmp_path)
    engine = FakeEngine()
    result = load_into_engine(plan, engine, None, lambda _: None)
    assert result == {"id": plan.image_id, "reference": "q:1", "loaded": True}
    assert engine.tags == {"q:1": plan.image_id}
    assert sum(name.endswith("layer.tar") for name in engine.loaded_members[0]) == 3


def test_base_in_engine_is_not_sent_again(tmp_path):
    plan = _plan(tmp_path)
    engine = FakeEngine(known={plan.base.pinned})
    load_into_engine(plan, engine, None, lambda _: None)
    sent = [n for n in engine.loaded_members[0] if n.endswith("layer.tar")]
    assert sent == sorted(f"{l.diff_id[7:]}/layer.tar" for l in plan.layers)
    assert not list((tmp_path / ".repropack").rglob("*.partial.tar"))


def test_present_image_is_only_tagged(tmp_path):
    plan = _plan(tmp_path)
    engine = FakeEngine(known={plan.image_id})
    assert load_into_engine(plan, engine, None, lambda _: None)["loaded"] is False
    assert engine.loaded_members == [] and engine.tags == {"q:1": plan.image_id}


def test_wrong_id_from_the_engine_moves_no_tag(tmp_path):
    plan = _plan(tmp_path)
    engine = FakeEngine(load_as="sha256:" + "f" * 64)
    with pytest.raises(BuildError, match="the tag was not moved"):
        load_into_engine(plan, engine, None, lambda _: None)
    assert engine.tags == {}
