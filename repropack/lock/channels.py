"""Channel names, mirrors and credentials.

A lock records every conda package under its channel's *canonical* URL (the one the
manifest names), never a mirror's and never with credentials. Mirrors are applied at
the edges: the solver reads repodata through them, fetch downloads through them.

Mirrors come from ``[channels.mirrors]`` and from ``REPROPACK_CHANNEL_MIRRORS``
(``name=url,name2=url2``; the variable wins, for sites that cannot edit the manifest).
A mirror value is a URL; ``file://./dir`` and ``file://../dir`` (and plain relative paths)
are taken relative to the project folder, so a manifest can name a channel shipped beside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

MIRRORS_ENV = "REPROPACK_CHANNEL_MIRRORS"
CHANNEL_ALIAS = "https://conda.anaconda.org"
_TOKEN = re.compile(r"/t/[^/]+(?=/)")


def strip_credentials(url: str) -> str:
    """``url`` without user:password and without an anaconda ``/t/<token>`` segment."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    path = _TOKEN.sub("", parts.path)
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def has_credentials(url: str) -> bool:
    return strip_credentials(url) != url


def canonical_channel_url(channel: str) -> str:
    """The URL a channel name stands for (``conda-forge`` -> https://conda.anaconda.org/conda-forge)."""
    if "://" in channel:
        return strip_credentials(channel).rstrip("/")
    return f"{CHANNEL_ALIAS}/{channel.strip('/')}"


def _as_url(value: str, root: Path) -> str:
    if value.startswith(("file://./", "file://../")):
        value = value[len("file://"):]
    elif "://" in value:
        return value.rstrip("/")
    path = Path(value)
    if not path.is_absolute():
        path = root / path
    return path.resolve().as_uri()


def mirrors(manifest_mirrors: Mapping[str, str], root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Channel name or canonical URL -> mirror URL, the environment variable overriding the manifest."""
    environ = os.environ if environ is None else environ
    merged = dict(manifest_mirrors)
    for item in filter(None, (s.strip() for s in environ.get(MIRRORS_ENV, "").split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip():
            from repropack.errors import UsageError

            raise UsageError(f"{MIRRORS_ENV}: {item!r} is not name=url")
        merged[name.strip()] = url.strip()
    result = {}
    for name, url in merged.items():
        result[canonical_channel_url(name)] = _as_url(url, root)
    return result


def solve_url(channel: str, mirror_map: Mapping[str, str]) -> str:
    """Where the solver reads this channel from (its mirror, if any; credentials kept)."""
    canonical = canonical_channel_url(channel)
    if canonical in mirror_map:
        return mirror_map[canonical]
    return channel if "://" in channel else canonical


def to_canonical(url: str, channel: str, mirror_map: Mapping[str, str]) -> str:
    """Map a package URL seen through a mirror (or with credentials) back to the canonical channel."""
    canonical = canonical_channel_url(channel)
    source = solve_url(channel, mirror_map).rstrip("/")
    for prefix in (source, strip_credentials(source)):
        if url.startswith(prefix + "/"):
            return canonical + url[len(prefix):]
    return strip_credentials(url)


def to_download(url: str, mirror_map: Mapping[str, str]) -> str:
    """Map a locked (canonical) URL to where it is fetched from now (its mirror, if any)."""
    for canonical, mirror in sorted(mirror_map.items(), key=lambda item: -len(item[0])):
        if url.startswith(canonical + "/"):
            return mirror + url[len(canonical):]
    return url


def credentials_for(urls: list[str]) -> dict[str, tuple[str, str]]:
    """host -> (user, password) from the manifest's channel and index URLs, for downloads only."""
    found: dict[str, tuple[str, str]] = {}
    for url in urls:
        parts = urlsplit(url) if "://" in url else None
        if parts and parts.username:
            found[parts.hostname or ""] = (parts.username, parts.password or "")
    return found
