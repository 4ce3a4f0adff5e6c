"""Which profile an instance runs on: the step's own ``profile``, else the run's ``--profile``, else ``local``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repropack.errors import UsageError

if TYPE_CHECKING:
    from repropack.manifest.model import Manifest, Profile


class Profiles:
    def __init__(self, manifest: Manifest, default: str | None = None):
        self.manifest = manifest
        self.default = default
        self._resolved: dict[str, Profile] = {}

    def for_instance(self, inst: Any) -> Profile:
        name = inst.step.profile or self.default
        found = self._resolved.get(name or "")
        if found is None:  # once per profile: this runs for every instance
            if name is not None and name not in self.manifest.profiles:
                known = ", ".join(sorted(self.manifest.profiles)) or "none defined"
                raise UsageError(f"unknown profile {name!r} (profiles: {known})")
            found = self._resolved[name or ""] = self.manifest.profile(name)
        return found


def keyed_env(root: Path, profiles: Profiles) -> Callable[[Any], Mapping[str, str]]:
    """instance -> keyed digests of its profile's ``env-keyed`` variables (for its cache key)."""
    from repropack.run.envkeys import KeyedEnv

    keyed = KeyedEnv(root)
    return lambda inst: keyed.digests(profiles.for_instance(inst).env_keyed)
