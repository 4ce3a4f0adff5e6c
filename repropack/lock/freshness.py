"""Is the lock still the lock of this manifest? Names what changed when it is not.

``build`` and ``run`` call :func:`ensure_fresh` and never relock implicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repropack.errors import StaleLockError
from repropack.lock.lockfile import (
    LOCK_NAME,
    LockSet,
    canonical_hash,
    environment_inputs,
    read_lockset,
    tampered_files,
)


def _describe(key: str, old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list):
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]
        parts = [f"+{v!r}" for v in added] + [f"-{v!r}" for v in removed]
        if not parts:
            parts = ["order changed"]
        return f"{key} ({', '.join(parts)})"
    return f"{key} ({old!r} -> {new!r})"


def environment_changes(locked_inputs: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(locked_inputs) | set(current))
    return [_describe(k, locked_inputs.get(k), current.get(k)) for k in keys if locked_inputs.get(k) != current.get(k)]


def stale_reasons(manifest: Any, lockset: LockSet) -> list[str]:
    """Every way the lock differs from the manifest or from its own recorded hashes."""
    reasons = []
    for name, env in sorted(manifest.environments.items()):
        current = environment_inputs(env)
        locked = lockset.environments.get(name)
        if locked is None:
            reasons.append(f"environment {name} is not locked")
        elif locked.inputs_hash != canonical_hash(current) or dict(locked.inputs) != current:
            changes = environment_changes(dict(locked.inputs), current)
            reasons.append(f"environment {name} changed: {'; '.join(changes) or 'inputs hash differs'}")
    for name in sorted(set(lockset.environments) - set(manifest.environments)):
        reasons.append(f"environment {name} is locked but no longer in the manifest")
    if lockset.base.reference != manifest.image.base:
        reasons.append(f"image.base changed ({lockset.base.reference!r} -> {manifest.image.base!r})")
    reasons += tampered_files(lockset)
    return reasons


def load_lockset(project_root: Path | str, manifest: Any = None, *, check: bool = False) -> LockSet:
    """Read the project's lock, verifying every lock file's sha256.

    With ``check=True`` (and a manifest, loaded from ``project_root`` when not given) a lock that
    no longer matches the manifest raises :class:`StaleLockError` naming each change.
    """
    root = Path(project_root)
    lockset = read_lockset(root)
    if check:
        if manifest is None:
            from repropack.manifest import load_manifest

            manifest = load_manifest(root)
        reasons = stale_reasons(manifest, lockset)
    else:
        reasons = tampered_files(lockset)
    if reasons:
        raise StaleLockError(f"{root / LOCK_NAME} is stale: " + "; ".join(reasons), hint="run `repropack lock`")
    return lockset


def ensure_fresh(manifest: Any) -> LockSet:
    """The lock of ``manifest``'s project, refusing a stale or edited one."""
    return load_lockset(manifest.root, manifest, check=True)
