"""The conda side end to end, against local channels built by the tests (no network, no conda)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _lockhelp import Server, data_pkg, example_channel, make_channel, manifest

from repropack.errors import EnvironmentCreateError, FetchError, FormatVersionError, SolveError, StaleLockError
from repropack.lock import ensure_fresh, fetch, load_lockset, lock_project, materialize
from repropack.lock.cache import ArtifactCache
from repropack.lock.materializer import ensure_host_environment

CONDA_ENV = {"channels": ("conda-forge",), "conda": ("greet",), "platforms": ("linux-64",)}


@pytest.fixture
def channel(tmp_path: Path) -> Path:
    return example_channel(tmp_path / "channel")


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


def project(tmp_path: Path, channel: Path, env=CONDA_ENV, name="proj"):
    """A project whose `conda-forge` is redirected to the test channel, as air-gapped sites do."""
    return manifest(tmp_path / name, {"default": env}, mirrors={"conda-forge": channel.as_uri()})


def lock_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in [root / "repropack.lock", *root.glob("locks/*/*")]}


def test_lock_records_canonical_urls_hashes_and_parses_with_conda_lock(tmp_path, channel):
    from conda_lock.lockfile import parse_conda_lock_file

    m = project(tmp_path, channel)
    report = lock_project(m)
    assert report.solved == ["default"]
    parsed = parse_conda_lock_file(m.root / "locks/default/conda-lock.yml")
    got = {p.name: p for p in parsed.package}
    assert set(got) == {"greet", "greet-data"}  # the dependency came along
    greet = got["greet"]
    assert greet.url == "https://conda.anaconda.org/conda-forge/noarch/greet-1.0.0-0.conda"  # not the mirror
    assert greet.categories == {"main"} and greet.manager == "conda"
    assert len(greet.hash.sha256) == 64 and len(greet.hash.md5) == 32
    assert got["greet-data"].url.endswith(".tar.bz2") and got["greet-data"].version == "1.1.0"
    assert greet.dependencies == {"greet-data": ">=1"}
    assert channel.as_uri() not in (m.root / "repropack.lock").read_text()


def test_relock_unchanged_writes_nothing_and_resolve_is_byte_identical(tmp_path, channel):
    m = project(tmp_path, channel)
    lock_project(m)
    before = lock_bytes(m.root)
    assert lock_project(m).written == []
    forced = lock_project(m, update=["greet"])  # solves again, nothing newer exists
    assert forced.solved == ["default"] and forced.written == []
    assert lock_bytes(m.root) == before


def test_update_moves_only_the_named_package(tmp_path, channel):
    m = project(tmp_path, channel, env={**CONDA_ENV, "conda": ("greet", "extra")})
    extra = data_pkg("extra", "1.0")
    example_channel(channel, extra=[extra])
    lock_project(m)
    example_channel(channel, extra=[extra, data_pkg("extra", "2.0"), data_pkg("greet-data", "1.2.0")])
    # inputs changed: a solve, but the locked versions are preferred
    m2 = project(tmp_path, channel, env={**CONDA_ENV, "conda": ("greet", "extra", "greet-data")})
    lock_project(m2)
    versions = _versions(m2.root)
    assert versions == {"greet": "1.0.0", "greet-data": "1.1.0", "extra": "1.0"}
    lock_project(m2, update=["extra"])
    assert _versions(m2.root) == {"greet": "1.0.0", "greet-data": "1.1.0", "extra": "2.0"}


def _versions(root: Path) -> dict[str, str]:
    from repropack.lock.condalock import read_conda_packages

    return {p.name: p.version for p in read_conda_packages(root / "locks/default/conda-lock.yml")}


def test_multi_platform_lock_from_both_subdirs(tmp_path, channel):
    tools = [data_pkg("tool", "1.0", subdir=s, fmt=".conda", build=f"h_{s.replace('-', '_')}")
             for s in ("linux-64", "osx-arm64")]
    example_channel(channel, extra=tools, subdirs=("linux-64", "osx-arm64"))
    m = project(tmp_path, channel, env={**CONDA_ENV, "conda": ("tool", "greet"), "platforms": ("linux-64", "osx-arm64")})
    lock_project(m)
    from conda_lock.lockfile import parse_conda_lock_file

    parsed = parse_conda_lock_file(m.root / "locks/default/conda-lock.yml")
    tool_urls = {p.platform: p.url for p in parsed.package if p.name == "tool"}
    assert tool_urls == {
        "linux-64": "https://conda.anaconda.org/conda-forge/linux-64/tool-1.0-h_linux_64.conda",
        "osx-arm64": "https://conda.anaconda.org/conda-forge/osx-arm64/tool-1.0-h_osx_arm64.conda",
    }
    assert {p.platform for p in parsed.package if p.name == "greet"} == {"linux-64", "osx-arm64"}
    assert parsed.metadata.platforms == ["linux-64", "osx-arm64"]


@pytest.mark.parametrize(("specs", "platforms", "message"), [
    (("nosuchpkg",), ("linux-64",), "nosuchpkg"),
    (("greet", "greet-data <1"), ("linux-64",), "greet-data"),
    (("numpy >>1",), ("linux-64",), "malformed spec 'numpy >>1'"),
    (("greet",), ("osx-64",), "platform osx-64 is not offered"),
])
def test_bad_conda_input_is_named_and_writes_nothing(tmp_path, channel, specs, platforms, message):
    m = project(tmp_path, channel, env={**CONDA_ENV, "conda": specs, "platforms": platforms})
    with pytest.raises(SolveError, match=message.replace("(", r"\(")) as info:
        lock_project(m)
    assert "\n" not in str(info.value)
    assert not (m.root / "repropack.lock").exists() and not (m.root / "locks").exists()


def test_conflict_names_both_packages(tmp_path, channel):
    m = project(tmp_path, channel, env={**CONDA_ENV, "conda": ("greet-data 1.0.0", "greet-data >=1.1")})
    with pytest.raises(SolveError) as info:
        lock_project(m)
    assert "greet-data 1.0.0" in str(info.value) and "greet-data >=1.1" in str(info.value)


def test_stale_and_tampered_locks_name_what_changed(tmp_path, channel):
    m = project(tmp_path, channel)
    lock_project(m)
    ensure_fresh(m)
    changed = project(tmp_path, channel, env={**CONDA_ENV, "conda": ("greet", "numpy >=1.26")})
    with pytest.raises(StaleLockError, match=r"environment default changed: conda \(\+'numpy >=1.26'\)"):
        ensure_fresh(changed)
    path = m.root / "locks/default/conda-lock.yml"
    path.write_text(path.read_text().replace("version: 1.1.0", "version: 1.0.0"))
    with pytest.raises(StaleLockError, match="locks/default/conda-lock.yml was edited"):
        load_lockset(m.root)
    lock_project(m)  # relocking repairs the edit
    ensure_fresh(m)


def test_newer_lock_format_is_refused(tmp_path, channel):
    m = project(tmp_path, channel)
    lock_project(m)
    lock = m.root / "repropack.lock"
    lock.write_text(lock.read_text().replace("version = 1", "version = 7"))
    with pytest.raises(FormatVersionError, match="lock format version 7"):
        load_lockset(m.root)
    with pytest.raises(FormatVersionError):
        lock_project(m)


def test_round_trip_fetch_create_run_reuse_and_move(tmp_path, channel, cache):
    m = project(tmp_path, channel)
    lockset = lock_project(m).lockset
    first = fetch(lockset, manifest=m, cache=cache)
    assert len(first.downloaded) == 2 and first.bytes > 0
    assert fetch(lockset, manifest=m, cache=cache).downloaded == []
    prefix, created = ensure_host_environment(lockset, "default", cache=cache)
    assert created and prefix.parent == m.root / ".repropack/envs"
    out = subprocess.run([prefix / "bin/greet"], capture_output=True, text=True, check=True).stdout
    assert out == "hello from greet-data 1.1.0\n"
    assert f"# prefix: {prefix}\n" in (prefix / "bin/greet").read_text()  # placeholder rewritten
    meta = json.loads(next((prefix / "conda-meta").glob("greet-1*.json")).read_text())
    assert meta["url"] == "https://conda.anaconda.org/conda-forge/noarch/greet-1.0.0-0.conda"
    assert ensure_host_environment(lockset, "default", cache=cache) == (prefix, False)
    moved = tmp_path / "moved"
    m.root.rename(moved)
    relocated = load_lockset(moved)
    new_prefix, created = ensure_host_environment(relocated, "default", cache=cache)
    assert created and new_prefix.is_relative_to(moved)
    assert f"# prefix: {new_prefix}\n" in (new_prefix / "bin/greet").read_text()


def test_materialize_stages_for_another_prefix(tmp_path, channel, cache):
    m = project(tmp_path, channel)
    lockset = lock_project(m).lockset
    fetch(lockset, manifest=m, cache=cache)
    dest = materialize(lockset, "default", tmp_path / "stage", prefix=Path("/opt/envs/default"), cache=cache)
    script = (dest / "bin/greet").read_text()
    assert 'exec cat "/opt/envs/default/share/greet/message.txt"' in script
    assert str(dest) not in script
    with pytest.raises(EnvironmentCreateError, match="not empty"):
        materialize(lockset, "default", dest, cache=cache)


def test_create_without_fetch_names_the_missing_packages(tmp_path, channel, cache):
    m = project(tmp_path, channel)
    lockset = lock_project(m).lockset
    with pytest.raises(EnvironmentCreateError, match="greet 1.0.0") as info:
        ensure_host_environment(lockset, "default", cache=cache)
    assert "repropack fetch" in str(info.value)
    assert not (m.root / ".repropack/envs").exists() or not any((m.root / ".repropack/envs").iterdir())


def test_offline_fetch_names_what_is_missing(tmp_path, channel, cache):
    m = project(tmp_path, channel)
    lockset = lock_project(m).lockset
    with pytest.raises(FetchError, match=r"offline: 2 locked artifact\(s\) missing .*greet"):
        fetch(lockset, offline=True, manifest=m, cache=cache)


def test_corrupted_cache_entry_is_fetched_again(tmp_path, channel, cache):
    m = project(tmp_path, channel)
    lockset = lock_project(m).lockset
    fetch(lockset, manifest=m, cache=cache)
    entry = next(cache.root.glob("artifacts/sha256/*/*/greet-1.0.0-0.conda"))
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    again = fetch(lockset, manifest=m, cache=cache)
    assert [a.name for a in again.downloaded] == ["greet"]
    from repropack.lock.cache import file_sha256

    assert file_sha256(entry) == entry.parent.name


def test_download_cut_midway_is_retried_then_fails_cleanly(tmp_path, channel, cache):
    with Server(channel, cut={"greet-1.0.0-0.conda"}) as server:
        m = manifest(tmp_path / "p", {"default": CONDA_ENV}, mirrors={"conda-forge": server.url})
        lockset = lock_project(m).lockset
        with pytest.raises(FetchError, match="greet 1.0.0.*connection cut mid-transfer") as info:
            fetch(lockset, manifest=m, cache=cache, retries=2, backoff=0.01)
        assert "after 3 attempts" in str(info.value)
        assert server.hits["greet-1.0.0-0.conda"] == 3
    assert not list(cache.root.rglob("greet-1.0.0-0.conda"))  # nothing under the real name
    assert not list(cache.root.rglob(".partial-*"))  # and no partial file either


def test_mirror_lock_fetches_from_original_and_credentials_never_reach_the_lock(tmp_path, channel, cache):
    with Server(channel) as server:
        secret_url = server.url.replace("http://", "http://alice:s3cret@")
        m = manifest(tmp_path / "p", {"default": {**CONDA_ENV, "channels": (secret_url,)}})
        lock_project(m)
        texts = "".join(p.read_text() for p in [m.root / "repropack.lock", *m.root.glob("locks/*/*")])
        assert "s3cret" not in texts and "alice" not in texts
        assert f"{server.url}/noarch/greet-1.0.0-0.conda" in texts
        report = fetch(load_lockset(m.root), manifest=m, cache=cache)
        assert len(report.downloaded) == 2
    # Locked against a mirror: fetched from wherever `conda-forge` points now.
    m2 = project(tmp_path, channel, name="p2")
    lockset = lock_project(m2).lockset
    copy = tmp_path / "other-mirror"
    example_channel(copy)
    fresh = ArtifactCache(tmp_path / "cache2")
    with Server(copy) as server:
        m3 = manifest(m2.root, {"default": CONDA_ENV}, mirrors={"conda-forge": server.url})
        fetch(lockset, manifest=m3, cache=fresh)
        assert server.hits.get("greet-1.0.0-0.conda") == 1


def test_channel_generator_is_deterministic_and_example_is_current(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    example_channel(a)
    example_channel(b)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    shipped = make_channel.__file__.replace("make_channel.py", "channel")
    assert sorted(p.relative_to(shipped) for p in Path(shipped).rglob("*") if p.is_file()) == files
    assert all((Path(shipped) / f).read_bytes() == (a / f).read_bytes() for f in files)


def test_platform_option_solves_only_that_platform(tmp_path, channel):
    example_channel(channel, subdirs=("linux-64", "osx-arm64"))
    m = project(tmp_path, channel, env={**CONDA_ENV, "platforms": ("linux-64", "osx-arm64")})
    lock_project(m)
    before = lock_bytes(m.root)
    report = lock_project(m, platforms=["osx-arm64"])
    assert report.solved == ["default"] and lock_bytes(m.root) == before
    from repropack.errors import UsageError

    with pytest.raises(UsageError, match="not locked for win-64"):
        lock_project(m, platforms=["win-64"])


def test_conda_lock_solver_needs_a_conda_executable(tmp_path, channel, monkeypatch):
    from repropack.errors import LockError

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    m = project(tmp_path, channel)
    with pytest.raises(LockError, match="--solver conda-lock needs conda, mamba or micromamba"):
        lock_project(m, solver="conda-lock")
