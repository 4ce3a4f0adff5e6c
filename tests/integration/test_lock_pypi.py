"""The PyPI side against the real index (small packages), and the conda/PyPI overlap."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from _lockhelp import example_channel, manifest

from repropack.errors import SolveError
from repropack.lock import fetch, lock_project
from repropack.lock.cache import ArtifactCache
from repropack.lock.materializer import ensure_host_environment
from repropack.lock.solve_pypi import uv_bin

pytestmark = pytest.mark.network


def _pylock_names(path: Path) -> set[str]:
    return {p["name"] for p in tomllib.loads(path.read_text())["packages"]}


def test_numpy_from_conda_is_never_replaced_by_a_wheel(tmp_path: Path):
    from conda_lock.lockfile import parse_conda_lock_file

    channel = example_channel(tmp_path / "channel")
    env = {"python": "3.11", "channels": ("conda-forge",), "conda": ("numpy >=1.26",),
           "pip": ("numpy-financial ==1.0.0",), "platforms": ("linux-64",)}
    m = manifest(tmp_path / "p", {"default": env}, mirrors={"conda-forge": channel.as_uri()})
    lockset = lock_project(m).lockset
    assert _pylock_names(m.root / "locks/default/pylock.linux-64.toml") == {"numpy-financial"}
    parsed = parse_conda_lock_file(m.root / "locks/default/conda-lock.yml")
    assert sorted((p.name, p.manager) for p in parsed.package) == [("numpy", "conda"), ("numpy-financial", "pip")]
    cache = ArtifactCache(tmp_path / "cache")
    fetch(lockset, manifest=m, cache=cache)
    prefix, _ = ensure_host_environment(lockset, "default", cache=cache)
    code = ("import importlib.metadata as md, numpy, numpy_financial;"
            "print(numpy.REPROPACK_FAKE, sorted(d.metadata['Name'] for d in md.distributions()))")
    out = subprocess.run([prefix / "bin/python", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "conda ['numpy', 'numpy-financial']"  # one numpy, conda's


def test_without_conda_numpy_the_wheel_is_locked(tmp_path: Path):
    # The counterpart of the test above: the exclusion is what keeps numpy out of the pylock.
    m = manifest(tmp_path / "p", {"default": {"python": "3.11", "pip": ("numpy-financial ==1.0.0",)}})
    lock_project(m)
    assert _pylock_names(m.root / "locks/default/pylock.linux-64.toml") == {"numpy-financial", "numpy"}
    assert not (m.root / "locks/default/conda-lock.yml").exists()


def test_pip_round_trip_and_uv_reads_the_pylock(tmp_path: Path):
    m = manifest(tmp_path / "p", {"default": {"python": "3.11", "pip": ("tabulate ==0.9.0",),
                                              "platforms": ("linux-64", "osx-arm64")}})
    lockset = lock_project(m).lockset
    pylock = m.root / "locks/default/pylock.linux-64.toml"
    assert (m.root / "locks/default/pylock.osx-arm64.toml").exists()
    cache = ArtifactCache(tmp_path / "cache")
    fetch(lockset, manifest=m, cache=cache)
    prefix, created = ensure_host_environment(lockset, "default", cache=cache)
    out = subprocess.run([prefix / "bin/python", "-c", "import tabulate; print(tabulate.__version__)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0.9.0"
    dry = subprocess.run([uv_bin(), "pip", "install", "--dry-run", "--python", str(prefix / "bin/python"),
                          "-r", str(pylock)], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "Would make no changes" in dry.stderr or "Audited" in dry.stderr


def test_unknown_pypi_package_is_named(tmp_path: Path):
    m = manifest(tmp_path / "p", {"default": {"python": "3.11", "pip": ("repropack-no-such-package-zz ==1.0",)}})
    with pytest.raises(SolveError, match="repropack-no-such-package-zz") as info:
        lock_project(m)
    assert "\n" not in str(info.value)
    assert not (m.root / "repropack.lock").exists()


def test_pip_environment_staged_for_an_image_prefix(tmp_path: Path):
    from repropack.lock import materialize

    m = manifest(tmp_path / "p", {"default": {"python": "3.11", "pip": ("tabulate ==0.9.0",)}})
    lockset = lock_project(m).lockset
    cache = ArtifactCache(tmp_path / "cache")
    fetch(lockset, manifest=m, cache=cache)
    stage = materialize(lockset, "default", tmp_path / "stage", prefix=Path("/opt/envs/default"),
                        python="/usr/bin/python3.11", cache=cache)
    leaked = [p for p in stage.rglob("*") if p.is_file() and not p.is_symlink()
              and str(stage).encode() in p.read_bytes()]
    assert leaked == []  # nothing points at the staging directory
    assert (stage / "bin/python").resolve() == Path("/usr/bin/python3.11").resolve()
    out = subprocess.run([stage / "bin/tabulate", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "tabulate" in out.stdout
