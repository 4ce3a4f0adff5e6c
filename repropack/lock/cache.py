"""The content-addressed artifact cache.

Location: ``$REPROPACK_CACHE`` if set, else platformdirs' user cache dir for
``repropack``. Every package file lives at ``artifacts/sha256/<ab>/<hex>/<filename>``:
addressed by its sha256, with its original file name kept because installers read
the name (wheel tags, ``.conda`` vs ``.tar.bz2``). Files are written to a temporary name
in the same directory while hashing and renamed only once the digest matched, so a
cut download or a wrong file never appears under a real name. Entries are verified by
digest whenever they are used; a corrupt one is deleted and fetched again.

Beside an entry, ``.<name>`` files hold data derived from its verified bytes (for a conda
package, its repodata record: reading it from a ``.tar.bz2`` decompresses the whole archive),
written atomically the first time they are needed; a derived file is not part of the
entry, and one that cannot be read is derived again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from repropack.errors import FetchError

CACHE_ENV = "REPROPACK_CACHE"
_CHUNK = 1 << 20


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("repropack", appauthor=False))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def path_for(self, sha256: str, filename: str) -> Path:
        if "/" in filename or filename in ("", ".", ".."):
            raise FetchError(f"refusing artifact file name {filename!r}")
        return self.root / "artifacts" / "sha256" / sha256[:2] / sha256 / filename

    def derived_path(self, sha256: str, name: str) -> Path:
        """Where data derived from the entry ``sha256`` is kept (``name`` without a dot)."""
        return self.path_for(sha256, f".{name}")

    def store_derived(self, sha256: str, name: str, data: bytes) -> Path:
        """Write derived data beside the entry, atomically (temp file, then rename)."""
        target = self.derived_path(sha256, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return target

    @property
    def conda_pkgs(self) -> Path:
        """Where rattler keeps extracted conda packages (derived from verified archives only)."""
        return self.root / "conda-pkgs"

    def lookup(self, sha256: str, filename: str) -> Path | None:
        """The entry if present and intact; a corrupt entry is removed and reported absent."""
        path = self.path_for(sha256, filename)
        if not path.is_file():
            return None
        if file_sha256(path) != sha256:
            path.unlink(missing_ok=True)
            return None
        return path

    def lookup_many(self, entries: Iterable[tuple[str, str]]) -> list[Path | None]:
        """:meth:`lookup` of each (sha256, filename), hashed on every core (hashlib releases the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        entries = list(entries)
        if len(entries) < 2:
            return [self.lookup(*entry) for entry in entries]
        with ThreadPoolExecutor(max_workers=min(len(entries), os.cpu_count() or 1, 8)) as pool:
            return list(pool.map(lambda entry: self.lookup(*entry), entries))

    def store(
        self,
        sha256: str,
        filename: str,
        chunks: Iterable[bytes],
        *,
        label: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> Path:
        """Write ``chunks`` under the digest, verifying while streaming; raises on a mismatch."""
        target = self.path_for(sha256, filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    digest.update(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
            actual = digest.hexdigest()
            if actual != sha256:
                from repropack.errors import DigestMismatch

                error = FetchError(f"{label}: sha256 mismatch: expected {sha256}, got {actual}")
                error.mismatch = DigestMismatch(label, sha256, actual)
                raise error
            os.chmod(tmp, 0o644)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
