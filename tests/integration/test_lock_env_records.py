"""Conda records derived once per cached archive: a warm-cache env create reads no archive again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _lockhelp import example_channel, manifest

from repropack.lock import fetch, lock_project, materialize
from repropack.lock.cache import ArtifactCache

PREFIX = Path("/opt/envs/default")  # the same prefix for every install, so the files are the same
CONDA_ENV = {"channels": ("conda-forge",), "conda": ("greet", "numpy"), "platforms": ("linux-64",)}


@pytest.fixture
def locked(tmp_path: Path):
    channel = example_channel(tmp_path / "channel")
    m = manifest(tmp_path / "proj", {"default": CONDA_ENV}, mirrors={"conda-forge": channel.as_uri()})
    lockset = lock_project(m).lockset
    cache = ArtifactCache(tmp_path / "cache")
    fetch(lockset, manifest=m, cache=cache)
    return lockset, cache


def _meta(prefix: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((prefix / "conda-meta").glob("*.json"))}


def _sidecars(cache: ArtifactCache) -> list[Path]:
    return sorted(cache.root.glob("artifacts/sha256/*/*/.repodata-record.json"))


def test_second_create_reads_no_archive_and_installs_the_same(tmp_path, locked, monkeypatch):
    import rattler

    lockset, cache = locked
    first = materialize(lockset, "default", tmp_path / "a", prefix=PREFIX, cache=cache)
    sidecars = _sidecars(cache)
    assert len(sidecars) == 3  # greet, greet-data, numpy
    assert {json.loads(p.read_text())["name"] for p in sidecars} == {"greet", "greet-data", "numpy"}

    async def no_archive_reads(path):
        raise AssertionError(f"read the archive {path} again")

    monkeypatch.setattr(rattler.RepoDataRecord, "from_package_archive", no_archive_reads)
    second = materialize(lockset, "default", tmp_path / "b", prefix=PREFIX, cache=cache)
    assert _meta(second) == _meta(first)
    numpy = _meta(second)["numpy-1.26.4-fake_0.json"]
    assert numpy["noarch"] == "generic" and numpy["url"].startswith("https://conda.anaconda.org/conda-forge/")


def test_unreadable_or_foreign_derived_record_is_derived_again(tmp_path, locked):
    lockset, cache = locked
    first = materialize(lockset, "default", tmp_path / "a", prefix=PREFIX, cache=cache)
    sidecars = _sidecars(cache)
    sidecars[0].write_text("{not json")
    other = json.loads(sidecars[2].read_text())
    sidecars[1].write_text(json.dumps(other))  # another package's record under this digest
    again = materialize(lockset, "default", tmp_path / "b", prefix=PREFIX, cache=cache)
    assert _meta(again) == _meta(first)
    assert json.loads(sidecars[0].read_text())["sha256"] == sidecars[0].parent.name
    assert json.loads(sidecars[1].read_text())["sha256"] == sidecars[1].parent.name
