"""The manifest: ``repropack.toml`` loaded into an immutable, validated tree."""

from __future__ import annotations

MANIFEST_NAME = "repropack.toml"

__all__ = ["MANIFEST_NAME", "load_manifest", "find_manifest", "load_manifest_or_none"]


def __getattr__(name: str):
    # Lazy so `import repropack.manifest` stays cheap for `repropack --help`.
    if name in ("load_manifest", "find_manifest"):
        from repropack.manifest import loader

        return getattr(loader, name)
    raise AttributeError(name)


def load_manifest_or_none(root):
    """The project's manifest as it stands now; None when it does not load (readers of past
    runs, such as ``logs`` and ``report``, must still work then)."""
    from repropack.errors import ReproError
    from repropack.manifest import loader

    try:
        return loader.load_manifest(root)
    except (ReproError, OSError, ValueError):
        return None
