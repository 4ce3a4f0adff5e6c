"""Where a step's software comes from, per runtime, and its identity for cache keys.

The runner asks three things of an environment: its lock hash (part of every
cache key; the same on host, Docker and Apptainer, so changing runtime reruns
nothing), its materialized prefix on the host, and the image (Docker) or SIF
(Apptainer) that holds it. The answers come from the lock and build packages;
a project without environments runs on the host's own tools (key part "host").
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repropack.errors import EngineUnavailable, RunError
from repropack.run.keys import canonical

if TYPE_CHECKING:
    from repropack.manifest.model import Manifest, Profile

HOST = "host"
ENVS_DIR = Path(".repropack") / "envs"
SIF_CACHE = Path(".repropack") / "cache" / "sif"


class Environments:
    def __init__(self, manifest: Manifest, provision: Any = None):
        self.manifest = manifest
        self.provision = provision  # repropack.lock.Provision: may it fetch and create? (default: both)
        self.created: list[tuple[str, Path]] = []  # environments installed by this object
        self.root = manifest.root
        self._lockset: Any = None
        self._hashes: dict[str | None, str] = {}
        self._prefixes: dict[str, Path | None] = {}
        self._images: dict[tuple[str, str], str] = {}

    # -- identity ------------------------------------------------------------------------
    def lock_hash(self, name: str | None) -> str:
        if name not in self._hashes:
            self._hashes[name] = self._lock_hash(name)
        return self._hashes[name]

    def _lock_hash(self, name: str | None) -> str:
        if name is None or name not in self.manifest.environments:
            return HOST
        lockset = self._load_lockset()
        if lockset is not None and name in lockset.environments:
            from repropack.lock.lockfile import environment_lock_hash

            return environment_lock_hash(lockset, name)
        # Not locked yet: the manifest's own spec stands in (it still changes when the spec does).
        env = self.manifest.environments[name]
        spec = {k: list(v) if isinstance(v, tuple) else v for k, v in _fields(env).items() if k != "name"}
        return "unlocked:" + hashlib.sha256(canonical(spec).encode()).hexdigest()

    def _load_lockset(self) -> Any:
        """The project's lock, checked fresh against the manifest; None when there is none yet."""
        if self._lockset is None and (self.root / "repropack.lock").exists():
            from repropack.lock import ensure_fresh

            self._lockset = ensure_fresh(self.manifest)
        return self._lockset

    # -- host prefix ---------------------------------------------------------------------
    def host_prefix(self, name: str | None) -> Path | None:
        """The environment materialized on this host (its bin/ goes first on PATH), or None."""
        if name is None or name not in self.manifest.environments:
            return None
        if name not in self._prefixes:
            self._prefixes[name] = self._materialize(name)
        return self._prefixes[name]

    def _materialize(self, name: str) -> Path | None:
        lockset = self._load_lockset()
        if lockset is None:
            from repropack.errors import StaleLockError

            raise StaleLockError(f"environment {name!r} is not locked yet", hint="run `repropack lock`")
        from repropack.lock import Provision, provide_host_environment

        prefix, created = provide_host_environment(lockset, name, self.provision or Provision(), manifest=self.manifest)
        if created:
            self.created.append((name, Path(prefix)))
        return Path(prefix)

    # -- images --------------------------------------------------------------------------
    def image(self, profile: Profile, runtime: str) -> str:
        """Docker image reference or SIF path for a profile (built by `repropack build`)."""
        key = (profile.name, runtime)
        if key not in self._images:
            self._images[key] = self._image(profile, runtime)
        return self._images[key]

    def _image(self, profile: Profile, runtime: str) -> str:
        """The last `repropack build`'s image/SIF; else an image already named as [image].name."""
        options = profile.options
        if runtime == "apptainer" and options.get("sif"):
            return str(self.root / str(options["sif"]))
        reference = options.get("image") or self._built("docker") or self.manifest.image.name
        if runtime == "docker":
            if not reference:
                raise RunError("no image to run in Docker", hint="run `repropack build`, or name one in [image] name")
            return str(reference)
        sif = self._built("sif")
        if sif:
            return sif
        if not reference:
            raise RunError("no SIF to run in Apptainer", hint="run `repropack build`, or name an image in [image] name")
        return self._sif_from_docker(str(reference))

    def _built(self, kind: str) -> str | None:
        """From the build records: the image reference, or the newest SIF of the latest image."""
        latest_record = _optional("repropack.build.record", "latest_record")
        if latest_record is None:
            return None
        record = latest_record(self.root) or {}
        image = record.get("image") or {}
        if kind == "docker":
            return image.get("reference") or image.get("id")
        read_record = _optional("repropack.build.record", "read_record")
        records = [record]
        builds = self.root / ".repropack" / "builds"
        if read_record is not None and builds.is_dir():
            records += [read_record(p) for p in sorted(builds.glob("2*.json"), reverse=True)]
        for candidate in records:
            sif = candidate.get("sif") or {}
            path = sif.get("path") if isinstance(sif, dict) else sif
            same = not isinstance(sif, dict) or sif.get("image_id") in (None, image.get("id"))
            if path and same and Path(path).exists():
                return str(path)
        return None

    def _sif_from_docker(self, reference: str) -> str:
        """Convert a local Docker image to a cached SIF (keyed by the image ID)."""
        try:
            image_id = subprocess.run(
                ["docker", "image", "inspect", "-f", "{{.Id}}", reference],
                capture_output=True, text=True, check=True, timeout=60,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise EngineUnavailable("docker", f"cannot inspect image {reference}: {exc}") from exc
        target = self.root / SIF_CACHE / (image_id.replace(":", "-") + ".sif")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
            done = subprocess.run(
                ["apptainer", "build", "-F", str(tmp), f"docker-daemon:{reference}"],
                capture_output=True, text=True, timeout=3600,
            )
            if done.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise EngineUnavailable("apptainer", f"cannot build a SIF from {reference}: {done.stderr.strip()[-400:]}")
            os.replace(tmp, target)
        return str(target)


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def _optional(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
