"""Environments staged on the host at their final in-image prefix, then written as layers.

Why on the host rather than in a build stage: the packages come from the
verified cache that ``repropack fetch`` filled, so nothing is downloaded and no
package manager has to run inside a container (no network, no CA bundle, no
conda or pip in the base image); the staged files carry only the final prefix
(``/opt/envs/<name>``), so the layer bytes depend on the lock alone and the
layer is cached under a key derived from the lock, not from any engine state.

- conda environments: :func:`repropack.lock.materialize` with ``prefix=`` the
  image prefix (rattler rewrites prefix placeholders to it).
- pip-only environments: a venv whose ``bin/python`` is the base image's own
  interpreter, with the locked wheels installed by :mod:`repropack.build.wheels`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from repropack.build.base import BaseImage
from repropack.build.wheels import install_wheel, make_venv
from repropack.errors import BuildError

ENVS_ROOT = "/opt/envs"
PLATFORM = "linux-64"


def env_prefix(name: str) -> str:
    return f"{ENVS_ROOT}/{name}"


def env_variables(name: str, base_path: str) -> dict[str, str]:
    """What activates environment ``name`` inside the image (the runners use the same)."""
    return {"PATH": f"{env_prefix(name)}/bin:{base_path}", "VIRTUAL_ENV": env_prefix(name)}


def locked_wheels(lockset, env_name: str, platform: str = PLATFORM) -> list:
    """The locked wheels (``repropack.lock.fetcher.Artifact``) of an environment for ``platform``."""
    from repropack.lock.fetcher import environment_artifacts

    return sorted((a for a in environment_artifacts(lockset, env_name, platform) if a.kind == "pip"),
                  key=lambda a: a.name)


def cached_wheel(artifact) -> Path:
    """The verified cache's copy of a locked wheel (``repropack fetch`` put it there)."""
    from repropack.lock.cache import ArtifactCache

    path = ArtifactCache().lookup(artifact.sha256, artifact.filename)
    if path is None:
        raise BuildError(f"{artifact.label} is not in the verified cache (or is corrupt)",
                         hint="run `repropack fetch` first")
    return path


def stage_environment(
    lockset,
    env_name: str,
    dest: Path,
    base: BaseImage,
    *,
    wheel_path: Callable[[object], Path] = cached_wheel,
) -> None:
    """Stage environment ``env_name`` into ``dest`` as it must appear at ``/opt/envs/<name>``."""
    env = lockset.environment(env_name)
    prefix = env_prefix(env_name)
    if env.has_conda:
        from repropack.lock import materialize

        materialize(lockset, env_name, dest, prefix=prefix, platform=PLATFORM)
        return
    version = env.python or "3"
    interpreter = base.python(version) if env.python else None
    if interpreter is None:
        looked = ", ".join(f"/{d}/python{version}" for d in ("usr/local/bin", "usr/bin"))
        raise BuildError(
            f"environment {env_name} needs Python {version}, but the base image {base.reference} has none "
            f"(looked for {looked})",
            hint=f"choose a base with Python {version} (e.g. python:{version}-slim) or add python to the environment's conda packages",
        )
    make_venv(dest, interpreter, version)
    for package in locked_wheels(lockset, env_name):
        install_wheel(wheel_path(package), dest, prefix, version)
