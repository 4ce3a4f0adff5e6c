"""Keyed digests of the profile's ``env-keyed`` variables, for cache keys.

Such a variable is often a credential, and records (the journal, reports) travel further
than the secret should: so a record never holds its value, nor a plain hash of it (a short
secret would fall to a dictionary search). It holds HMAC-SHA256 of name and value under a
random per-project key, ``.repropack/env-key`` (mode 0600, made on first use, kept by
``clean``). Without that file a journal's digests cannot be tested against guesses. Losing
it only costs a rerun of the steps that key variables.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from repropack.errors import RunError

KEY_FILE = Path(".repropack") / "env-key"
UNSET = "unset"
_KEY_BYTES = 32


class KeyedEnv:
    """Digests of named variables of `environ`; the project's key is read (or made) on first need."""

    def __init__(self, root: Path, environ: Mapping[str, str] | None = None):
        self.path = Path(root) / KEY_FILE
        self.environ = os.environ if environ is None else environ
        self._key: bytes | None = None
        self._memo: dict[tuple[str, ...], dict[str, str]] = {}

    def digests(self, names: Sequence[str]) -> dict[str, str]:
        """name -> "hmac-sha256:<hex>", or "unset" for a variable the caller does not have."""
        names = tuple(names)
        if not names:
            return {}
        found = self._memo.get(names)
        if found is None:
            key = self._project_key()
            found = self._memo[names] = {name: _digest(key, name, self.environ.get(name)) for name in names}
        return found

    def _project_key(self) -> bytes:
        if self._key is None:
            self._key = _read_key(self.path) or _make_key(self.path)
        return self._key


def _digest(key: bytes, name: str, value: str | None) -> str:
    if value is None:
        return UNSET
    message = name.encode() + b"\0" + value.encode("utf-8", "surrogateescape")
    return "hmac-sha256:" + hmac.new(key, message, hashlib.sha256).hexdigest()


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink planted in its place is never followed
        raise RunError(f"{path}: cannot read the project's env key ({exc.strerror})",
                       hint="it must be a regular file; remove it to make a new one") from None
    try:
        st = os.fstat(fd)
        data = os.read(fd, 4 * _KEY_BYTES)
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace").strip()
    if not stat.S_ISREG(st.st_mode) or len(text) != 2 * _KEY_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise RunError(f"{path}: not a repropack env key", hint="remove it: a new one is made (env-keyed steps rerun)")
    return bytes.fromhex(text)


def _make_key(path: Path) -> bytes:
    """A new key, written whole to a temporary file and linked into place: a concurrent run
    sees no file or a complete one, and the first link wins."""
    key = secrets.token_bytes(_KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, key.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return _read_key(path) or key
    except OSError as exc:
        raise RunError(f"{path}: cannot create the project's env key ({exc.strerror})") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return key
