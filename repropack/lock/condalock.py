"""``locks/<env>/conda-lock.yml``: conda-lock's unified format, written with conda-lock's models.

Every package carries ``categories = {"main"}``: conda-lock silently drops a dependency
with no category. The environment's PyPI packages are written as ``manager: pip``
entries so that ``conda-lock install`` installs the whole environment. No time, git or
input-file metadata is written, so the bytes depend on the locked packages only.
Reading back uses plain YAML (the file's sha256 is verified first).

``import conda_lock`` runs its package ``__init__``, which loads the whole CLI (vendored
conda and poetry): 2.3 s here, against 0.7 s for the lockfile models alone. When nothing
has imported conda-lock yet, :func:`_lockfile_api` registers a bare package module (the
real ``__path__``, ``__version__`` set) so that only ``conda_lock.lockfile`` and what it
imports are loaded. Every submodule still imports normally afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from repropack.lock.solve_conda import CondaPackage
from repropack.lock.solve_pypi import PipPackage


def render_conda_lock(
    path: Path,
    channels: Sequence[str],
    platforms: Sequence[str],
    conda: Mapping[str, Sequence[CondaPackage]],
    pip: Mapping[str, Sequence[PipPackage]],
    content_hash: Mapping[str, str],
    sources: Sequence[str],
) -> str:
    """The text of the lock file; written by conda-lock's own writer into a scratch path."""
    write_conda_lock_file, HashModel, LockedDependency, Lockfile, LockMeta = _lockfile_api()

    packages = []
    for platform in platforms:
        for p in conda.get(platform, ()):
            packages.append(LockedDependency(
                name=p.name, version=p.version, manager="conda", platform=platform,
                dependencies=p.dependencies, url=p.url, hash=HashModel(md5=p.md5, sha256=p.sha256),
                categories={"main"}, build=p.build,
            ))
        for w in pip.get(platform, ()):
            packages.append(LockedDependency(
                name=w.name, version=w.version, manager="pip", platform=platform, dependencies={},
                url=w.url, hash=HashModel(sha256=w.sha256), categories={"main"},
            ))
    meta = LockMeta(content_hash=dict(content_hash), channels=list(channels), platforms=list(platforms),
                    sources=list(sources))
    # conda-lock's writer names the file in its help text, so it writes under the real name.
    with tempfile.TemporaryDirectory(prefix="repropack-condalock-") as tmp:
        scratch = Path(tmp) / path.name
        write_conda_lock_file(Lockfile(package=packages, metadata=meta), scratch, metadata_choices=[])
        return scratch.read_text(encoding="utf-8")


def _lockfile_api():
    import sys

    if "conda_lock" not in sys.modules:
        import importlib.metadata
        import importlib.util
        import types

        spec = importlib.util.find_spec("conda_lock")
        package = types.ModuleType("conda_lock")
        package.__spec__, package.__file__ = spec, spec.origin
        package.__path__ = list(spec.submodule_search_locations or [])
        package.__version__ = importlib.metadata.version("conda-lock")
        sys.modules["conda_lock"] = package
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta

    return write_conda_lock_file, HashModel, LockedDependency, Lockfile, LockMeta


def read_conda_packages(path: Path) -> list[CondaPackage]:
    """The ``manager: conda`` entries of a conda-lock file (v1 on disk), as :class:`CondaPackage`."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for entry in data.get("package", []):
        if entry.get("manager") != "conda":
            continue
        url = entry["url"]
        base, subdir, _ = url.rsplit("/", 2)
        deps = tuple(f"{k} {v}".strip() if v != "*" else k for k, v in (entry.get("dependencies") or {}).items())
        out.append(CondaPackage(
            name=entry["name"], version=str(entry["version"]), build=str(entry.get("build") or ""),
            platform=entry["platform"], subdir=subdir, url=url, channel=base,
            sha256=entry["hash"]["sha256"], md5=entry["hash"]["md5"], depends=deps,
        ))
    return out
