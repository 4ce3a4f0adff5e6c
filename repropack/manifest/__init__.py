"""The manifest: ``repropack.toml`` loaded into an immutable, validated tree."""

from __future__ import annotations

MANIFEST_NAME = "repropack.toml"

__all__ = ["MANIFEST_NAME", "load_manifest", "find_manifest"]


def __getattr__(name: str):
    # Lazy so `import repropack.manifest` stays cheap for `repropack --help`.
    if name in ("load_manifest", "find_manifest"):
        from repropack.manifest import loader

        return getattr(loader, name)
    raise AttributeError(name)
