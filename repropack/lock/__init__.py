"""Environments: lock, fetch and materialize, with no conda installation needed.

The API other packages call (all importable from ``repropack.lock``):

- ``lock_project(manifest, *, environments=(), platforms=(), update=(), base_override=None,
  solver="rattler") -> LockReport``: what ``repropack lock`` does (:mod:`.locker`).
- ``load_lockset(project_root, manifest=None, *, check=False) -> LockSet``: read and verify
  the lock; ``check=True`` raises :class:`~repropack.errors.StaleLockError` when it no
  longer matches the manifest (:mod:`.freshness`).
- ``ensure_fresh(manifest) -> LockSet``: the lock, refusing a stale or edited one. ``build``
  and ``run`` use this and never relock.
- ``environment_lock_hash(lockset, env_name) -> str``: identity of an environment's locked
  contents, for cache keys.
- ``fetch(lockset, offline=False, ...) -> FetchReport``: every locked artifact into the
  verified cache (:mod:`.fetcher`, :mod:`.cache`).
- ``materialize(lockset, env_name, dest, *, prefix=None, python=None, platform=None) -> Path``:
  install an environment from the cache only into ``dest``; conda prefix placeholders are
  rewritten to ``prefix`` (default ``dest``), so ``/opt/envs/<name>`` can be staged on the
  host for an image (:mod:`.materializer`).
- ``host_environment(lockset, env_name) -> Path``: the project's own prefix under
  ``.repropack/envs/``, from the cache only.
- ``provide_host_environment(lockset, env_name, Provision(...)) -> (Path, created)``: the same,
  downloading what the cache lacks first unless ``--offline``/``--frozen`` (what ``env`` and
  the local runner use).

Lock layout and format: :mod:`.lockfile`. Base image pinning: :mod:`.base_image`.
"""

from __future__ import annotations

_EXPORTS = {
    "lock_project": "locker",
    "LockReport": "locker",
    "load_lockset": "freshness",
    "ensure_fresh": "freshness",
    "stale_reasons": "freshness",
    "LockSet": "lockfile",
    "EnvironmentLock": "lockfile",
    "BasePin": "lockfile",
    "environment_lock_hash": "lockfile",
    "fetch": "fetcher",
    "FetchReport": "fetcher",
    "materialize": "materializer",
    "host_environment": "materializer",
    "ensure_host_environment": "materializer",
    "provide_host_environment": "materializer",
    "Provision": "provision",
    "activation_env": "materializer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy: importing repropack.lock must not import rattler, requests or conda-lock.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"repropack.lock.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
