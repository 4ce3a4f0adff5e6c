"""``repropack.lock``: the versioned index that ties a project's lock files together.

Layout of a locked project::

    repropack.lock                         # this file (TOML, ``version = 1``)
    locks/<env>/conda-lock.yml             # conda-lock unified format (conda + pip entries), conda envs only
    locks/<env>/pylock.<platform>.toml     # PEP 751, one per platform, envs with pip packages

``repropack.lock`` holds the repropack version, the manifest inputs each environment was
locked from (credential-free) with their canonical hash (scheme :data:`HASH_SCHEME`), the
sha256 of every lock file (so hand edits are caught), and the pinned base image.
Nothing in it depends on the time or the machine: relocking an unchanged project gives
identical bytes.

API (for the build, runners and archive):

- :func:`load_lockset` ``(root, manifest=None, *, check=False) -> LockSet``: reads and
  verifies the files (a hand-edited file raises :class:`StaleLockError`); with
  ``check=True`` also compares with the manifest and raises :class:`StaleLockError`
  naming what changed. A newer format raises :class:`FormatVersionError`.
- :func:`ensure_fresh` ``(manifest) -> LockSet``: the same with ``check=True``.
- :func:`environment_lock_hash` ``(lockset, env) -> str``: changes exactly when the
  environment's locked packages change; use it in cache keys.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.errors import FormatVersionError, LockError, StaleLockError
from repropack.lock.channels import strip_credentials

LOCK_NAME = "repropack.lock"
LOCKS_DIR = "locks"
FORMAT_VERSION = 1
HASH_SCHEME = "repropack-inputs/1"
ENV_HASH_SCHEME = "repropack-env/1"
INPUT_KEYS = ("python", "channels", "conda", "pip", "indexes", "platforms")


def conda_lock_relpath(env: str) -> str:
    return f"{LOCKS_DIR}/{env}/conda-lock.yml"


def pylock_relpath(env: str, platform: str) -> str:
    return f"{LOCKS_DIR}/{env}/pylock.{platform}.toml"


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_hash(data: object, scheme: str = HASH_SCHEME) -> str:
    """sha256 over canonical JSON (sorted keys, no spaces), prefixed by the scheme name."""
    text = json.dumps({"scheme": scheme, "data": data}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256_bytes(text.encode())


def environment_inputs(env: Any) -> dict[str, Any]:
    """The manifest values one environment's lock depends on, credentials removed."""
    inputs: dict[str, Any] = {
        "channels": [strip_credentials(c) for c in env.channels],
        "conda": list(env.conda),
        "pip": list(env.pip),
        "indexes": [strip_credentials(i) for i in env.indexes],
        "platforms": list(env.platforms),
    }
    if env.python is not None:
        inputs["python"] = str(env.python)
    return inputs


def manifest_inputs(manifest: Any) -> dict[str, Any]:
    return {
        "environments": {name: environment_inputs(env) for name, env in sorted(manifest.environments.items())},
        "image": {"base": manifest.image.base},
    }


@dataclass(frozen=True)
class BasePin:
    """The base image as locked. ``source``: registry | local | override | unpinned."""

    reference: str | None
    source: str = "unpinned"
    digest: str | None = None
    digest_kind: str | None = None  # "manifest" (a registry digest) or "image-id" (a local image's ID)
    image: str | None = None  # the local image used (local/override)

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def pinned_reference(self) -> str | None:
        """What to build from: ``repo@sha256:...`` for a registry digest, the image ID otherwise."""
        if self.digest is None:
            return None
        if self.digest_kind == "manifest" and self.reference:
            repo = (self.image or self.reference).split("@", 1)[0]
            name, _, tag = repo.rpartition(":")
            if name and "/" not in tag:
                repo = name
            return f"{repo}@{self.digest}"
        return self.digest


@dataclass(frozen=True)
class EnvironmentLock:
    name: str
    inputs: Mapping[str, Any]
    inputs_hash: str
    files: Mapping[str, str]  # project-relative path -> "sha256:<hex>"

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(self.inputs.get("platforms", ()))

    @property
    def python(self) -> str | None:
        return self.inputs.get("python")

    @property
    def has_conda(self) -> bool:
        return bool(self.inputs.get("conda"))

    @property
    def has_pip(self) -> bool:
        return bool(self.inputs.get("pip"))


@dataclass(frozen=True)
class LockSet:
    root: Path
    repropack_version: str
    manifest_hash: str
    hash_scheme: str
    base: BasePin
    environments: Mapping[str, EnvironmentLock] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    def environment(self, name: str) -> EnvironmentLock:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise LockError(f"environment {name!r} is not in {self.root / LOCK_NAME} (locked: {known})") from None

    def path(self, relpath: str) -> Path:
        return self.root / relpath


def environment_lock_hash(lockset: LockSet, env_name: str) -> str:
    """Identity of an environment's locked contents: the lock files' hashes and the inputs."""
    env = lockset.environment(env_name)
    return canonical_hash({"inputs": env.inputs_hash, "files": dict(sorted(env.files.items()))}, ENV_HASH_SCHEME)


# ---------------------------------------------------------------- writing


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the lock")


def _key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else json.dumps(key)


def render(lockset: LockSet) -> str:
    """The exact text of ``repropack.lock`` (stable key order, no timestamps)."""
    lines = [
        "# Written by `repropack lock`. Do not edit: edits are detected by the hashes below.",
        f"version = {FORMAT_VERSION}",
        f"repropack = {_toml_value(lockset.repropack_version)}",
        "",
        "[manifest]",
        f"hash-scheme = {_toml_value(lockset.hash_scheme)}",
        f"hash = {_toml_value(lockset.manifest_hash)}",
        "",
        "[base-image]",
    ]
    base = lockset.base
    for key, value in (("reference", base.reference), ("source", base.source), ("digest", base.digest),
                       ("digest-kind", base.digest_kind), ("image", base.image)):
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for name in sorted(lockset.environments):
        env = lockset.environments[name]
        lines += ["", f"[environments.{_key(name)}]", f"inputs-hash = {_toml_value(env.inputs_hash)}"]
        lines += [f"{k} = {_toml_value(env.inputs[k])}" for k in INPUT_KEYS if k in env.inputs]
        lines += ["", f"[environments.{_key(name)}.files]"]
        lines += [f"{_key(path)} = {_toml_value(digest)}" for path, digest in sorted(env.files.items())]
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, text: str) -> bool:
    """Write atomically, and only when the bytes differ (an unchanged relock touches nothing)."""
    data = text.encode()
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


# ---------------------------------------------------------------- reading

# version N -> function turning a version-N document into version N+1; none exist yet.
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _upgrade(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    version = raw.get("version")
    if not isinstance(version, int):
        raise LockError(f"{path}: no integer `version`; not a repropack lock")
    if version > FORMAT_VERSION:
        raise FormatVersionError("lock", path, version, FORMAT_VERSION)
    while version < FORMAT_VERSION:
        if version not in _UPGRADES:
            raise LockError(f"{path}: lock format version {version} is no longer supported; run `repropack lock`")
        raw = _UPGRADES[version](raw)
        version = raw["version"]
    return raw


def read_lockset(root: Path) -> LockSet:
    """Parse ``repropack.lock`` (through the upgrade path); no verification."""
    path = Path(root) / LOCK_NAME
    if not path.exists():
        raise StaleLockError(f"{path} does not exist", hint="run `repropack lock`")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: not a valid lock file: {exc}") from exc
    raw = _upgrade(raw, path)
    try:
        return _from_raw(Path(root), raw)
    except (KeyError, TypeError, AttributeError) as exc:
        raise LockError(f"{path}: malformed lock ({exc!r} missing or wrong)", hint="run `repropack lock`") from exc


def _from_raw(root: Path, raw: dict[str, Any]) -> LockSet:
    base = raw.get("base-image", {})
    envs = {}
    for name, table in raw.get("environments", {}).items():
        inputs = {k: table[k] for k in INPUT_KEYS if k in table}
        envs[name] = EnvironmentLock(name=name, inputs=inputs, inputs_hash=table["inputs-hash"],
                                     files=dict(table.get("files", {})))
    return LockSet(
        root=root,
        repropack_version=raw["repropack"],
        manifest_hash=raw["manifest"]["hash"],
        hash_scheme=raw["manifest"]["hash-scheme"],
        base=BasePin(reference=base.get("reference"), source=base.get("source", "unpinned"),
                     digest=base.get("digest"), digest_kind=base.get("digest-kind"), image=base.get("image")),
        environments=envs,
    )


def tampered_files(lockset: LockSet) -> list[str]:
    """One line per lock file that is missing or whose bytes no longer match the recorded sha256."""
    problems = []
    for env in lockset.environments.values():
        for relpath, expected in sorted(env.files.items()):
            path = lockset.path(relpath)
            if not path.exists():
                problems.append(f"{relpath} is missing")
                continue
            actual = sha256_bytes(path.read_bytes())
            if actual != expected:
                problems.append(f"{relpath} was edited (recorded {expected}, found {actual})")
    return problems
