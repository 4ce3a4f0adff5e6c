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
    assert registry.get("aws-batch").available
    assert registry.get("aws-batch").runtimes == ("docker",)
    assert registry.get("aws-batch").required == ("queue", "bucket")
    with pytest.raises(ValueError):
        registry.unregister("local")


def test_aws_batch_declares_staging_and_that_its_jobs_survive_the_runner():
    from types import SimpleNamespace

    caps = registry.get("aws-batch").capabilities(SimpleNamespace(cpus=None, memory=None))
    assert not caps.shared_filesystem and caps.enforces_time and caps.enforces_memory and caps.survives_runner
    assert not caps.co_schedules


def test_aws_batch_profile_needs_queue_and_bucket(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "repropack.toml").write_text('[project]\nname = "p"\n\n[profiles.c]\nbackend = "aws-batch"\nqueue = "q"\n')
    _, errors = check_manifest(root)
    assert [e.reason for e in errors] == ["backend 'aws-batch' needs 'bucket' in the profile"]


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
