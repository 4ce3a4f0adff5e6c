"""The backend registry: names the manifest accepts, the nearest name, registering a backend."""

from __future__ import annotations

import pytest
from repropack.backends import registry
from repropack.backends.base import Capabilities
from repropack.manifest.loader import check_manifest


@pytest.mark.parametrize("typed,meant", [("slrum", "slurm"), ("aws", "aws-batch"), ("locl", "local"),
                                         ("Local", "local"), ("kubernetes", None)])
def test_nearest_name(typed, meant):
    assert registry.nearest(typed) == meant


def test_built_in_backends_and_their_availability():
    assert registry.names()[:3] == ("local", "slurm", "aws-batch")
    assert registry.get("local").available and registry.get("slurm").available
    assert not registry.get("aws-batch").available
    assert registry.get("aws-batch").runtimes == ("docker",)
    with pytest.raises(ValueError):
        registry.unregister("local")


def write(root, backend):
    root.mkdir()
    (root / "repropack.toml").write_text(f'[project]\nname = "p"\n\n[profiles.x]\nbackend = "{backend}"\n')
    return root


def test_a_registered_backend_is_accepted_by_check_and_refused_once_gone(tmp_path):
    root = write(tmp_path / "p", "mine")
    registry.register("mine", None, Capabilities())
    try:
        manifest, errors = check_manifest(root)
        assert errors == [] and manifest.profiles["x"].backend == "mine"
    finally:
        registry.unregister("mine")
    _, errors = check_manifest(root)
    assert [e.key for e in errors] == ["profiles.x.backend"]
    assert errors[0].reason.startswith("unknown backend 'mine' (one of local, slurm, aws-batch)")
