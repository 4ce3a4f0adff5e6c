"""``repropack lock``: solve what changed, write the lock files, then ``repropack.lock``.

An environment whose manifest inputs, lock files and platforms are unchanged is not
solved again, so relocking an unchanged project writes nothing. A solve reuses the
previous lock as preferences (rattler's ``locked_packages``, uv's existing output), so
``--update NAME`` moves that package and only what it must. Everything is solved before
anything is written: a failing solve leaves the previous lock untouched.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack import __version__
from repropack.errors import FormatVersionError, LockError, UsageError
from repropack.lock import channels as ch
from repropack.lock.lockfile import (
    HASH_SCHEME,
    LOCK_NAME,
    LOCKS_DIR,
    EnvironmentLock,
    LockSet,
    canonical_hash,
    conda_lock_relpath,
    environment_inputs,
    manifest_inputs,
    pylock_relpath,
    read_lockset,
    render,
    sha256_bytes,
    tampered_files,
    write_if_changed,
)


@dataclass
class LockReport:
    lockset: LockSet
    solved: list[str] = field(default_factory=list)  # environments solved this time
    written: list[str] = field(default_factory=list)  # files whose bytes changed
    warnings: list[str] = field(default_factory=list)


def _previous(root: Path) -> LockSet | None:
    if not (root / LOCK_NAME).exists():
        return None
    try:
        return read_lockset(root)
    except FormatVersionError:
        raise
    except LockError:
        return None  # unreadable: relock from scratch


def lock_project(
    manifest: Any,
    *,
    environments: Sequence[str] = (),
    platforms: Sequence[str] = (),
    update: Sequence[str] = (),
    base_override: str | None = None,
    solver: str = "rattler",
) -> LockReport:
    root = manifest.root
    unknown = sorted(set(environments) - set(manifest.environments))
    if unknown:
        raise UsageError(f"no environment named {', '.join(unknown)} in the manifest "
                         f"(defined: {', '.join(sorted(manifest.environments)) or 'none'})")
    previous = _previous(root)
    selected = set(environments or manifest.environments)
    mirror_map = ch.mirrors(manifest.mirrors, root)
    texts: dict[str, str] = {}
    envs: dict[str, EnvironmentLock] = {}
    todo = {}
    for name, env in sorted(manifest.environments.items()):
        old = previous.environments.get(name) if previous else None
        if (name not in selected and old is not None) or (
                old is not None and not _needs_solve(previous, old, env, platforms, update)):
            envs[name] = old
        else:
            todo[name] = (env, old)
    solved = _solve_all(todo, previous, mirror_map, platforms, update, solver, root)
    for name, files in solved.items():
        texts.update(files)
        inputs = environment_inputs(todo[name][0])
        envs[name] = EnvironmentLock(name, inputs, canonical_hash(inputs),
                                     {path: sha256_bytes(text.encode()) for path, text in files.items()})
    envs = dict(sorted(envs.items()))
    report_solved = list(solved)
    _check_update_names(update, envs, texts, root)
    base, warnings = _base_pin(manifest, previous, base_override)
    lockset = LockSet(root=root, repropack_version=__version__, manifest_hash=canonical_hash(manifest_inputs(manifest)),
                      hash_scheme=HASH_SCHEME, base=base, environments=envs)
    report = LockReport(lockset=lockset, solved=report_solved, warnings=warnings)
    for relpath, text in sorted(texts.items()):
        if write_if_changed(root / relpath, text):
            report.written.append(relpath)
    _remove_orphans(root, envs)
    if write_if_changed(root / LOCK_NAME, render(lockset)):
        report.written.append(LOCK_NAME)
    return report


def _needs_solve(previous: LockSet, old: EnvironmentLock, env: Any, platforms: Sequence[str], update) -> bool:
    if old.inputs_hash != canonical_hash(environment_inputs(env)) or update or platforms:
        return True
    mine = LockSet(previous.root, previous.repropack_version, "", "", previous.base, {old.name: old})
    return bool(tampered_files(mine))


def _solve_all(todo, previous, mirror_map, platforms, update, solver, root) -> dict[str, dict[str, str]]:
    """Solve the environments concurrently: name -> {lock file path: text}, in name order.

    The wall time of a lock is mostly waiting: on uv (the network), on rattler (native code,
    GIL released). Each environment gets a thread, and conda-lock's models (0.1-0.2 s of imports)
    load in another while the solvers run. A failure is raised for the first environment by
    name, as a sequential lock would, once every thread has finished; nothing is written before.
    """
    from concurrent.futures import ThreadPoolExecutor

    if not todo:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(todo) + 1, 8), thread_name_prefix="repropack-lock") as pool:
        futures = {name: pool.submit(_solve_environment, name, env, old, previous, mirror_map, platforms, update,
                                     solver, root) for name, (env, old) in todo.items()}
        if any(env.conda for env, _ in todo.values()):
            from repropack.lock.condalock import load_models

            pool.submit(load_models)  # its errors, if any, come back from the render that needs it
        return {name: future.result() for name, future in futures.items()}


def _solve_environment(name, env, old, previous, mirror_map, platforms, update, solver, root) -> dict[str, str]:
    from repropack.lock import solve_pypi  # conda's modules only for conda: uv starts sooner

    bad = sorted(set(platforms) - set(env.platforms))
    if platforms and bad:
        raise UsageError(f"environment {name} is not locked for {', '.join(bad)} (its platforms: "
                         f"{', '.join(env.platforms)})")
    inputs = environment_inputs(env)
    reusable = old is not None and old.inputs_hash == canonical_hash(inputs) and not tampered_files(
        LockSet(root, "", "", "", previous.base, {name: old}))
    old_conda = _old_conda(root, name, old) if env.conda else []
    conda, pip_text = {}, {}
    for platform in env.platforms:
        if platforms and platform not in platforms:
            if not reusable:
                raise LockError(f"environment {name} changed; lock all its platforms (drop --platform)")
            conda[platform] = [p for p in old_conda if p.platform == platform]
            pip_text[platform] = _old_text(root, pylock_relpath(name, platform))
            continue
        if env.conda:
            locked = [p for p in old_conda if p.platform == platform]
            if solver == "conda-lock":
                conda[platform] = _solve_with_conda_lock(name, env, platform, mirror_map)
            else:
                from repropack.lock import solve_conda

                conda[platform] = solve_conda.solve(name, env.conda, env.channels, platform, mirror_map,
                                                    locked=locked, update=update)
        if env.pip:
            provided = {p.name: p.version for p in conda.get(platform, [])}
            pip_text[platform] = solve_pypi.compile_pylock(
                name, env.pip, env.python, platform, env.indexes, provided,
                previous=_old_text(root, pylock_relpath(name, platform)) if old else None, upgrade=update)
    files = {pylock_relpath(name, p): t for p, t in pip_text.items() if t is not None}
    if env.conda:
        from repropack.lock.condalock import render_conda_lock

        pip = {p: solve_pypi.read_pylock(t, p) for p, t in pip_text.items() if t}
        path = root / conda_lock_relpath(name)
        # conda-lock's own form: bare hex (its readers compare it with a hexdigest of the sources)
        content_hash = {p: canonical_hash({"inputs": inputs, "platform": p}).removeprefix("sha256:")
                        for p in env.platforms}
        files[conda_lock_relpath(name)] = render_conda_lock(
            path, inputs["channels"], list(env.platforms), conda, _first_wheel(pip), content_hash,
            sources=["../../repropack.toml"])
    return files


def _first_wheel(pip):
    # conda-lock holds one URL per pip package; the pylock may offer several compatible wheels.
    out = {}
    for platform, wheels in pip.items():
        seen, chosen = set(), []
        for w in wheels:
            if w.name not in seen:
                seen.add(w.name)
                chosen.append(w)
        out[platform] = chosen
    return out


def _old_conda(root: Path, name: str, old) -> list:
    from repropack.lock.condalock import read_conda_packages

    path = root / conda_lock_relpath(name)
    if old is None or conda_lock_relpath(name) not in old.files or not path.exists():
        return []
    try:
        return read_conda_packages(path)
    except Exception:  # a damaged previous lock only loses its preferences
        return []


def _old_text(root: Path, relpath: str) -> str | None:
    path = root / relpath
    return path.read_text(encoding="utf-8") if path.exists() else None


def _check_update_names(update, envs, texts, root) -> None:
    if not update:
        return
    blob = "\n".join(texts.values()).lower()
    missing = [n for n in update if f"name: {n.lower()}" not in blob and f'name = "{n.lower()}"' not in blob]
    if missing:
        raise UsageError(f"--update: nothing named {', '.join(missing)} is locked")


def _base_pin(manifest, previous: LockSet | None, override: str | None):
    from repropack.lock.base_image import OVERRIDE_ENV, resolve_base

    import os

    reference = manifest.image.base
    old = previous.base if previous else None
    if old and old.reference == reference and old.pinned and not (override or os.environ.get(OVERRIDE_ENV)):
        return old, []
    return resolve_base(reference, override)


def _remove_orphans(root: Path, envs: dict[str, EnvironmentLock]) -> None:
    """Delete lock files that the new lock no longer lists (a dropped platform or environment)."""
    locks = root / LOCKS_DIR
    if not locks.is_dir():
        return
    wanted = {root / p for env in envs.values() for p in env.files}
    for path in list(locks.glob("*/conda-lock.yml")) + list(locks.glob("*/pylock.*.toml")):
        if path not in wanted:
            path.unlink()
    for directory in locks.iterdir():
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    if not any(locks.iterdir()):
        shutil.rmtree(locks)


def _solve_with_conda_lock(name, env, platform, mirror_map):
    """conda-lock's own solve; needs conda, mamba or micromamba, which repropack never installs."""
    import shutil as sh
    import subprocess
    import tempfile

    from repropack.lock.condalock import read_conda_packages

    exe = next((sh.which(x) for x in ("micromamba", "mamba", "conda") if sh.which(x)), None)
    if exe is None:
        raise LockError("--solver conda-lock needs conda, mamba or micromamba on PATH and none was found "
                        "(the default solver, rattler, needs none)")
    with tempfile.TemporaryDirectory(prefix="repropack-condalock-") as tmp:
        spec = Path(tmp) / "environment.yml"
        chans = "".join(f"  - {ch.solve_url(c, mirror_map)}\n" for c in env.channels)
        deps = "".join(f"  - {d}\n" for d in env.conda)
        spec.write_text(f"channels:\n{chans}dependencies:\n{deps}")
        out = Path(tmp) / "conda-lock.yml"
        proc = subprocess.run(["conda-lock", "lock", "--conda", exe, "-f", str(spec), "-p", platform,
                               "--lockfile", str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise LockError(f"environment {name}: conda-lock failed: {proc.stderr.strip()[-500:]}")
        return [_canonical(p, env.channels, mirror_map) for p in read_conda_packages(out)]


def _canonical(p, channels, mirror_map):
    from dataclasses import replace

    for c in channels:
        url = ch.to_canonical(p.url, c, mirror_map)
        if url != ch.strip_credentials(p.url) or url.startswith(ch.canonical_channel_url(c) + "/"):
            return replace(p, url=url, channel=ch.canonical_channel_url(c))
    return p
