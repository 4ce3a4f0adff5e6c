"""``[data]``: fetch (http, https, file) and verify by sha256 before any step reads them.

A file already at its path with the right digest is left alone (the file-hash
cache makes that check free on reruns). Downloads stream to a temporary file
next to the destination, are hashed as they arrive and are renamed into place
only when the digest matches. URLs are shown without credentials.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from repropack.errors import FetchError
from repropack.run.keys import FileHashCache


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        parts = parts._replace(netloc=host)
    return urllib.parse.urlunsplit(parts._replace(query="" if "token" in parts.query.lower() else parts.query))


def _expected(item: Any) -> str:
    digest = str(item.sha256)
    return (digest.split(":", 1)[1] if ":" in digest else digest).lower()


def fetch_data(root: Path, items: Iterable[Any], hashes: FileHashCache, *, offline: bool = False) -> list[str]:
    """Make every data item present and verified; returns the names fetched now."""
    fetched = []
    for item in items:
        want = _expected(item)
        have = hashes.digest(item.path)
        if have == want:
            continue
        if item.url is None:
            state = "missing" if have is None else f"has sha256 {have}"
            raise FetchError(f"data.{item.name}: {item.path} {state}; expected sha256 {want} and no url to fetch it from")
        if offline:
            raise FetchError(f"data.{item.name}: {item.path} must be fetched from {redact(item.url)} but --offline was given")
        _download(root, item, want)
        hashes.remember(item.path, want)
        fetched.append(item.name)
    return fetched


def _download(root: Path, item: Any, want: str) -> None:
    dest = root / item.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    digest = hashlib.sha256()
    shown = redact(item.url)
    try:
        with open(tmp, "wb") as out:
            for chunk in _chunks(item.url, shown, item.name):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if got != want:
            raise FetchError(f"data.{item.name}: {shown} has sha256 {got}, expected {want}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _chunks(url: str, shown: str, name: str):
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
        except OSError as exc:
            raise FetchError(f"data.{name}: cannot read {shown}: {exc.strerror}") from exc
        return
    if scheme not in ("http", "https"):
        raise FetchError(f"data.{name}: unsupported URL scheme {scheme!r} in {shown} (http, https or file)")
    import requests

    try:
        with requests.get(url, stream=True, timeout=(15, 120)) as response:
            if response.status_code != 200:
                raise FetchError(f"data.{name}: GET {shown} returned HTTP {response.status_code}")
            yield from response.iter_content(1 << 20)
    except requests.RequestException as exc:
        raise FetchError(f"data.{name}: cannot download {shown}: {type(exc).__name__}") from exc

