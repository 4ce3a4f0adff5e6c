"""Pinning [image].base on the real engines: a local Docker image, an override, the local registry."""

from __future__ import annotations

import subprocess

import pytest
from _lockhelp import manifest

from repropack.lock import lock_project
from repropack.lock.base_image import OVERRIDE_ENV, resolve_base

TEST_REPO = "repropack-test/lock-base"


def _image_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.docker
def test_local_image_pins_to_its_id(base_image, monkeypatch):
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    pin, warnings = resolve_base(base_image)  # the registry cannot be asked for local/...: Docker Hub is offline
    assert (pin.source, pin.digest, pin.digest_kind, warnings) == ("local", _image_id(base_image), "image-id", [])


@pytest.mark.docker
def test_override_is_recorded_in_the_lock(tmp_path, base_image, monkeypatch):
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    m = manifest(tmp_path / "p", {}, base="python:3.11-slim")
    lockset = lock_project(m, base_override=base_image).lockset
    assert (lockset.base.reference, lockset.base.source, lockset.base.image) == (
        "python:3.11-slim", "override", base_image)
    assert lockset.base.digest == _image_id(base_image)
    text = (m.root / "repropack.lock").read_text()
    assert 'source = "override"' in text and lockset.base.digest in text


@pytest.mark.docker
@pytest.mark.registry
def test_registry_digest_matches_the_pushed_manifest(base_image, monkeypatch):
    from _engines import REGISTRY

    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    ref = f"{REGISTRY}/{TEST_REPO}:1"
    subprocess.run(["docker", "tag", base_image, ref], check=True)
    try:
        subprocess.run(["docker", "push", ref], check=True, capture_output=True)
        repo_digests = subprocess.run(["docker", "image", "inspect", "-f", "{{json .RepoDigests}}", ref],
                                      capture_output=True, text=True, check=True).stdout
        pin, warnings = resolve_base(ref)
        assert pin.source == "registry" and pin.digest_kind == "manifest" and warnings == []
        assert f"{REGISTRY}/{TEST_REPO}@{pin.digest}" in repo_digests
        assert pin.pinned_reference == f"{REGISTRY}/{TEST_REPO}@{pin.digest}"
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)
