"""Install a locked environment from the cache only (no index, no channel, no network).

:func:`materialize` is the building block: conda packages are linked by rattler from
the verified archives, with every prefix placeholder rewritten to ``prefix`` (which may
differ from ``dest``: the image build stages ``/opt/envs/<name>`` on the host). Wheels are
installed by uv with ``--require-hashes --no-deps --no-index --offline`` from the cached
files. A pip-only environment (or a conda one without a conda ``python``) is a venv made
with ``uv venv --relocatable`` on a matching interpreter: the host's ``python3.X`` found
on PATH or by uv's discovery, or the ``python`` argument (an interpreter path, which must
exist at the same path wherever the environment is used).

:func:`host_environment` is what ``repropack env create`` and the local runner use: the
prefix ``.repropack/envs/<env>-<lockhash>``, built in a temporary directory and renamed
into place, reused while its recorded prefix and lock hash match, recreated otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from repropack.errors import EnvironmentCreateError
from repropack.lock.cache import ArtifactCache
from repropack.lock.fetcher import Artifact, environment_artifacts
from repropack.lock.lockfile import LockSet, environment_lock_hash
from repropack.lock.provision import Provision

MARKER = ".repropack-env.json"
ENVS_DIR = ".repropack/envs"


def host_platform() -> str:
    from rattler import Subdir

    return str(Subdir.current())


def find_python(version: str, env_name: str = "") -> Path:
    """A host interpreter for ``python = "X.Y"``: uv's discovery (no downloads), then PATH."""
    from repropack.lock.solve_pypi import uv_bin

    proc = subprocess.run([uv_bin(), "python", "find", "--system", "--no-config", version],
                          capture_output=True, text=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    if proc.returncode == 0 and proc.stdout.strip():
        return Path(proc.stdout.strip())
    found = shutil.which(f"python{version}")
    if found and _python_version(found) == version:
        return Path(found)
    where = f"environment {env_name} needs" if env_name else "needs"
    raise EnvironmentCreateError(f"{where} Python {version}, but no python{version} interpreter was found "
                                 "on PATH or by uv's interpreter discovery",
                                 hint=f"install python{version} (e.g. `apt-get install python{version}`)")


def _python_version(exe: str) -> str | None:
    proc = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _cached(cache: ArtifactCache, artifacts: list[Artifact], env_name: str) -> dict[str, Path]:
    paths, missing = {}, []
    for a, path in zip(artifacts, cache.lookup_many((a.sha256, a.filename) for a in artifacts)):
        if path is None:
            missing.append(a.label)
        else:
            paths[a.sha256] = path
    if missing:
        names = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise EnvironmentCreateError(f"environment {env_name}: {len(missing)} locked artifact(s) are not in the "
                                     f"cache {cache.root} (or are corrupt): {names}", hint="run `repropack fetch`")
    return paths


def materialize(
    lockset: LockSet,
    env_name: str,
    dest: Path,
    *,
    prefix: Path | None = None,
    python: str | None = None,
    platform: str | None = None,
    cache: ArtifactCache | None = None,
) -> Path:
    """Install ``env_name`` into the empty or missing directory ``dest``; returns ``dest``."""
    env = lockset.environment(env_name)
    platform = platform or host_platform()
    if platform not in env.platforms:
        raise EnvironmentCreateError(f"environment {env_name} is locked for {', '.join(env.platforms)}, "
                                     f"not for {platform}", hint=f"add {platform!r} to its platforms and relock")
    dest, prefix = Path(dest).absolute(), Path(prefix or dest).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise EnvironmentCreateError(f"{dest} is not empty; refusing to install an environment into it")
    cache = cache or ArtifactCache()
    artifacts = environment_artifacts(lockset, env_name, platform)
    paths = _cached(cache, artifacts, env_name)
    conda = [a for a in artifacts if a.kind == "conda"]
    wheels = [a for a in artifacts if a.kind == "pip"]
    dest.mkdir(parents=True, exist_ok=True)
    if wheels and not any(a.name == "python" for a in conda):
        _make_venv(dest, python or str(find_python(env.python or "3", env_name)), relocatable=prefix != dest)
    if conda:
        _install_conda(conda, paths, dest, prefix, platform, cache)
    if wheels:
        _install_wheels(wheels, paths, dest, env_name)
    if prefix != dest:
        _retarget_scripts(dest, prefix)
    return dest


def _make_venv(dest: Path, interpreter: str, relocatable: bool) -> None:
    from repropack.lock.solve_pypi import uv_bin

    args = [uv_bin(), "venv", "--no-config", "--quiet", "--allow-existing", "--python", interpreter, str(dest)]
    if relocatable:
        args.insert(3, "--relocatable")
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    if proc.returncode != 0:
        raise EnvironmentCreateError(f"could not create a venv at {dest} with {interpreter}: {proc.stderr.strip()}")


def _install_conda(conda: list[Artifact], paths, dest: Path, prefix: Path, platform: str, cache) -> None:
    import rattler

    async def run():
        records = await asyncio.gather(*(_conda_record(cache, a, paths[a.sha256]) for a in conda))
        await rattler.install(list(records), target_prefix=dest, cache_dir=cache.conda_pkgs,
                              alternative_target_prefix=prefix if prefix != dest else None,
                              platform=rattler.Subdir(platform), execute_link_scripts=False, show_progress=False)

    try:
        asyncio.run(run())
    except Exception as exc:  # rattler's exceptions are not one hierarchy
        raise EnvironmentCreateError(f"linking conda packages into {dest} failed: {exc}") from exc
    _canonical_conda_meta(dest, {a.filename: a.url for a in conda})


async def _conda_record(cache, artifact: Artifact, archive: Path):
    """The repodata record of a verified cached archive, pointing at that file (rattler never goes online).

    A conda-lock file lacks fields that linking needs (noarch, build number, ...), so they come
    from the archive's index; read once per artifact and kept beside it in the cache.
    """
    import rattler

    sidecar = cache.derived_path(artifact.sha256, "repodata-record.json")
    package = None
    if _derived_record_matches(sidecar, artifact):
        try:
            package = rattler.PackageRecord.from_index_json(sidecar, size=archive.stat().st_size,
                                                            sha256=artifact.sha256, md5=None)
        except Exception:  # unreadable derived data is derived again
            package = None
    if package is None:
        package = await rattler.RepoDataRecord.from_package_archive(archive)
        cache.store_derived(artifact.sha256, "repodata-record.json", package.to_json().encode())
    channel = artifact.url.rsplit("/", 2)[0]
    return rattler.RepoDataRecord(package, archive.name, archive.as_uri(), channel)


def _derived_record_matches(path: Path, artifact: Artifact) -> bool:
    """A kept record is used only if it is the record of this very archive."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("sha256") == artifact.sha256 and data.get("name") == artifact.name \
        and str(data.get("version")) == artifact.version and data.get("fn") == artifact.filename


def _canonical_conda_meta(dest: Path, urls: dict[str, str]) -> None:
    """Record the locked URLs (not the cache paths) in conda-meta, as if installed from the channel.

    Each file is overwritten in place, then cut to length: truncating it to zero first frees its
    blocks, which on ext4 mounted with ``discard`` cost 1-5 ms a file here (most of a warm create).
    The prefix is a staging directory, not in use, so the rewrite need not be atomic.
    """
    for meta in (dest / "conda-meta").glob("*.json"):
        data = json.loads(meta.read_bytes())
        url = urls.get(data.get("fn", ""))
        if url is None:
            continue
        data["url"], data["channel"] = url, url.rsplit("/", 2)[0]
        data.pop("extracted_package_dir", None)
        if isinstance(data.get("link"), dict):
            data["link"].pop("source", None)
        with meta.open("r+b") as handle:
            handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
            handle.truncate()


def _install_wheels(wheels: list[Artifact], paths, dest: Path, env_name: str) -> None:
    from repropack.lock.solve_pypi import uv_bin

    python = dest / "bin" / "python"
    hashes: dict[tuple[str, str], list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="repropack-wheels-") as tmp:
        links = Path(tmp) / "wheels"
        links.mkdir()
        for w in wheels:
            (links / w.filename).symlink_to(paths[w.sha256])
            hashes.setdefault((w.name, w.version), []).append(w.sha256)
        req = Path(tmp) / "requirements.txt"
        req.write_text("".join(f"{n}=={v} " + " ".join(f"--hash=sha256:{h}" for h in hs) + "\n"
                               for (n, v), hs in sorted(hashes.items())))
        args = [uv_bin(), "pip", "install", "--python", str(python), "--no-config", "--offline", "--no-index",
                "--find-links", str(links), "--require-hashes", "--no-deps", "--link-mode", "copy",
                "--quiet", "-r", str(req)]
        proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EnvironmentCreateError(f"environment {env_name}: installing wheels failed: {proc.stderr.strip()}")


def _retarget_scripts(dest: Path, prefix: Path) -> None:
    """Point scripts written with the staging path (shebangs, activate) at the final prefix."""
    old, new = str(dest).encode(), str(prefix).encode()
    for path in [dest / "pyvenv.cfg", *(dest / "bin").glob("*")]:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > (1 << 20):
            continue
        data = path.read_bytes()
        if old in data and b"\0" not in data:
            path.write_bytes(data.replace(old, new))


def host_environment(lockset: LockSet, env_name: str, *, cache: ArtifactCache | None = None) -> Path:
    """The project's own prefix of ``env_name``, created from the cache when needed."""
    return ensure_host_environment(lockset, env_name, cache=cache)[0]


def provide_host_environment(lockset: LockSet, env_name: str, provision: Provision = Provision(), *,
                             manifest: Any = None, cache: ArtifactCache | None = None) -> tuple[Path, bool]:
    """(prefix, created): the host prefix of ``env_name``, fetched and created as ``provision`` allows."""
    final, lock_hash = _host_prefix(lockset, env_name)
    if _is_current(final, lock_hash):
        return final, False
    if not provision.create:
        raise EnvironmentCreateError(f"environment {env_name} is not created on this machine and --frozen "
                                     "forbids creating it", hint="run `repropack env create`")
    if provision.fetch:
        from repropack.lock.fetcher import fetch

        fetch(lockset, manifest=manifest, environments=[env_name], platforms=[host_platform()], cache=cache,
              reporter=provision.reporter)
    return ensure_host_environment(lockset, env_name, cache=cache)


def _host_prefix(lockset: LockSet, env_name: str) -> tuple[Path, str]:
    lock_hash = environment_lock_hash(lockset, env_name)
    final = (lockset.root / ENVS_DIR / f"{env_name}-{lock_hash.split(':')[-1][:12]}").absolute()
    return final, lock_hash


def _is_current(final: Path, lock_hash: str) -> bool:
    marker = final / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except ValueError:
        return False
    return recorded.get("prefix") == str(final) and recorded.get("lock_hash") == lock_hash


def ensure_host_environment(lockset: LockSet, env_name: str, *, cache=None) -> tuple[Path, bool]:
    """(prefix, created): reuse a matching prefix, else build it beside and rename it into place."""
    final, lock_hash = _host_prefix(lockset, env_name)
    if _is_current(final, lock_hash):
        return final, False
    staging = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        materialize(lockset, env_name, staging, prefix=final, cache=cache)
        (staging / MARKER).write_text(json.dumps({"prefix": str(final), "lock_hash": lock_hash,
                                                  "environment": env_name}, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final, True


def activation_env(prefix: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables for running a command inside ``prefix``."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["CONDA_PREFIX"] = str(prefix)
    if (prefix / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(prefix)
    env.pop("PYTHONHOME", None)
    return env
