"""Changing a manifest on disk: through tomlkit (the user's comments and layout survive),
validated before it replaces the old file, written atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repropack.errors import ManifestError, ManifestErrors, UsageError


def edit_manifest(path: Path, change: Callable[[Any], None]) -> Path:
    """Apply ``change`` to the manifest's tomlkit document and save it, if the result is valid.

    A change that would make the manifest invalid raises ManifestErrors and leaves the file as it was.
    """
    import tomlkit

    from repropack.manifest.source import read_text

    text = read_text(path)
    document = tomlkit.parse(text)
    change(document)
    return write_validated(path, tomlkit.dumps(document), exclusive=False)


def write_validated(target: Path, text: str, *, exclusive: bool) -> Path:
    """Write ``text`` to ``target`` only if it loads as a manifest; nothing is left behind otherwise."""
    from repropack.manifest.loader import check_manifest

    fd, temp_name = tempfile.mkstemp(prefix=".repropack-", suffix=".toml", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        _, errors = check_manifest(temp)
        if errors:
            raise ManifestErrors([_renamed(error, temp, target) for error in errors])
        if exclusive:
            try:
                os.link(temp, target)  # fails if the target appeared meanwhile: never overwrite
            except FileExistsError:
                raise UsageError(f"{target} already exists") from None
        else:
            os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def _renamed(error: ManifestError, temp: Path, target: Path) -> ManifestError:
    path = target if error.path == temp else error.path
    return ManifestError(error.reason, path=path, key=error.key, line=error.line, column=error.column, hint=error.hint)
