from pathlib import Path

import pytest

from repropack.errors import FormatVersionError, LockError, StaleLockError
from repropack.lock.lockfile import (
    BasePin,
    EnvironmentLock,
    LockSet,
    canonical_hash,
    environment_lock_hash,
    read_lockset,
    render,
    sha256_bytes,
    tampered_files,
)


def _lockset(root: Path, files=None) -> LockSet:
    inputs = {"channels": ["conda-forge"], "conda": ["numpy >=1.26"], "pip": [], "indexes": ["https://pypi.org/simple"],
              "platforms": ["linux-64"], "python": "3.11"}
    env = EnvironmentLock("default", inputs, canonical_hash(inputs), files or {})
    return LockSet(root=root, repropack_version="0.1.0", manifest_hash="sha256:" + "0" * 64,
                   hash_scheme="repropack-inputs/1",
                   base=BasePin("python:3.11-slim", "local", "sha256:" + "a" * 64, "image-id", "python:3.11-slim"),
                   environments={"default": env, "two words": env})


def test_render_and_read_round_trip_byte_identical(tmp_path: Path):
    text = render(_lockset(tmp_path))
    (tmp_path / "repropack.lock").write_text(text)
    again = read_lockset(tmp_path)
    assert render(again) == text
    assert again.base.digest == "sha256:" + "a" * 64 and again.base.source == "local"
    assert again.environments["default"].platforms == ("linux-64",)
    assert "created" not in text and "time" not in text  # nothing that changes between runs


def test_canonical_hash_is_order_independent_and_versioned():
    assert canonical_hash({"a": 1, "b": [1, 2]}) == canonical_hash({"b": [1, 2], "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 1}, scheme="repropack-inputs/2")
    assert canonical_hash({"b": [1, 2]}) != canonical_hash({"b": [2, 1]})


def test_newer_format_version_is_refused(tmp_path: Path):
    (tmp_path / "repropack.lock").write_text(render(_lockset(tmp_path)).replace("version = 1", "version = 2", 1))
    with pytest.raises(FormatVersionError) as info:
        read_lockset(tmp_path)
    assert info.value.found == 2 and info.value.supported == 1
    assert "newer than this repropack supports" in str(info.value)


def test_garbage_and_missing_lock(tmp_path: Path):
    with pytest.raises(StaleLockError, match="does not exist"):
        read_lockset(tmp_path)
    (tmp_path / "repropack.lock").write_text("version = [")
    with pytest.raises(LockError, match="not a valid lock file"):
        read_lockset(tmp_path)


def test_tampered_and_missing_files_are_named(tmp_path: Path):
    (tmp_path / "locks").mkdir()
    good = tmp_path / "locks" / "a.yml"
    good.write_text("x: 1\n")
    lockset = _lockset(tmp_path, {"locks/a.yml": sha256_bytes(b"x: 1\n"), "locks/b.yml": sha256_bytes(b"")})
    assert tampered_files(lockset) == ["locks/b.yml is missing"] * 2
    good.write_text("x: 2\n")
    problems = tampered_files(lockset)
    assert any(p.startswith("locks/a.yml was edited (recorded sha256:") for p in problems)


def test_environment_lock_hash_follows_file_contents(tmp_path: Path):
    one = _lockset(tmp_path, {"locks/a.yml": sha256_bytes(b"1")})
    two = _lockset(tmp_path, {"locks/a.yml": sha256_bytes(b"2")})
    assert environment_lock_hash(one, "default") == environment_lock_hash(one, "default")
    assert environment_lock_hash(one, "default") != environment_lock_hash(two, "default")
    with pytest.raises(LockError, match="not in"):
        environment_lock_hash(one, "nope")


def test_pinned_reference():
    assert BasePin("python:3.11-slim", "registry", "sha256:" + "b" * 64, "manifest").pinned_reference == (
        "python@sha256:" + "b" * 64)
    assert BasePin("127.0.0.1:5000/x/base:1", "registry", "sha256:" + "b" * 64, "manifest").pinned_reference == (
        "127.0.0.1:5000/x/base@sha256:" + "b" * 64)
    assert BasePin("local/debian:bookworm", "override", "sha256:" + "c" * 64, "image-id").pinned_reference == (
        "sha256:" + "c" * 64)
    assert BasePin("python:3.11", "unpinned").pinned_reference is None
