"""Environments are solved concurrently: same files as one at a time, errors as a sequential lock names them."""

from __future__ import annotations

from pathlib import Path

import pytest
from _lockhelp import example_channel, manifest

from repropack.errors import SolveError
from repropack.lock import lock_project

BASE = {"channels": ("conda-forge",), "platforms": ("linux-64",)}
ENVS = {
    "alpha": {**BASE, "conda": ("greet",)},
    "beta": {**BASE, "conda": ("greet-data ==1.0.0",)},
    "gamma": {**BASE, "conda": ("numpy", "greet-data")},
}


@pytest.fixture
def channel(tmp_path: Path) -> Path:
    return example_channel(tmp_path / "channel")


def _project(root: Path, channel: Path, envs):
    return manifest(root, envs, mirrors={"conda-forge": channel.as_uri()})


def _locks(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("locks/*/*"))}


def test_concurrent_lock_equals_each_environment_locked_alone(tmp_path, channel):
    together = _project(tmp_path / "together", channel, ENVS)
    report = lock_project(together)
    assert report.solved == ["alpha", "beta", "gamma"]
    alone = {}
    for name, env in ENVS.items():
        single = _project(tmp_path / name, channel, {name: env})
        lock_project(single)
        alone.update(_locks(single.root))
    assert _locks(together.root) == alone
    assert b"greet-data-1.0.0" in alone["locks/beta/conda-lock.yml"]
    assert b"greet-data-1.1.0" in alone["locks/gamma/conda-lock.yml"]


def test_failures_are_reported_for_the_first_environment_by_name_and_nothing_is_written(tmp_path, channel):
    good = _project(tmp_path / "p", channel, ENVS)
    lock_project(good)
    before = {**_locks(good.root), "repropack.lock": (good.root / "repropack.lock").read_bytes()}
    broken = {**ENVS, "beta": {**BASE, "conda": ("nosuchpkg",)}, "gamma": {**BASE, "conda": ("alsomissing",)}}
    with pytest.raises(SolveError, match="environment beta.*nosuchpkg"):
        lock_project(_project(tmp_path / "p", channel, broken))
    assert {**_locks(good.root), "repropack.lock": (good.root / "repropack.lock").read_bytes()} == before
