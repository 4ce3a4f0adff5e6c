"""Pin ``[image].base`` to a digest, recorded in the lock (never written into the manifest).

Order: ``--base-override IMAGE`` (or ``REPROPACK_BASE_OVERRIDE``) uses that local Docker
image (source ``override``); else the registry is asked through the Docker Registry HTTP
API v2 (source ``registry``; anonymous bearer tokens as Docker Hub requires); else a
local Docker image of that name (source ``local``); else the base stays unpinned with a
warning (``build`` refuses it and says how to pin). A local image pins to its
RepoDigest when it has one, else to its image ID (``digest-kind = "image-id"``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from repropack.errors import LockError
from repropack.lock.lockfile import BasePin

OVERRIDE_ENV = "REPROPACK_BASE_OVERRIDE"
_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def api_base(self) -> str:
        host = self.registry.split(":")[0]
        scheme = "http" if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.") else "https"
        return f"{scheme}://{self.registry}"


def parse_reference(reference: str) -> ImageRef:
    """``[registry/]repo[:tag][@sha256:...]`` with Docker Hub's defaults (``library/``, ``latest``)."""
    rest, _, digest = reference.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = "registry-1.docker.io", rest
    name, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        name, tag = path, ""
    if registry == "registry-1.docker.io" and "/" not in name:
        name = f"library/{name}"
    if not name or (digest and not _DIGEST.match(digest)):
        raise LockError(f"image.base: {reference!r} is not an image reference")
    return ImageRef(registry, name, tag or (None if digest else "latest"), digest or None)


def registry_digest(reference: str, timeout: float = 5.0) -> str:
    """The manifest digest the registry serves for ``reference`` (raises on any failure)."""
    import requests

    ref = parse_reference(reference)
    if ref.digest:
        return ref.digest
    url = f"{ref.api_base}/v2/{ref.repository}/manifests/{ref.tag}"
    headers = {"Accept": _ACCEPT}
    resp = requests.head(url, headers=headers, timeout=timeout)
    if resp.status_code == 401 and "bearer" in resp.headers.get("WWW-Authenticate", "").lower():
        headers["Authorization"] = f"Bearer {_token(resp.headers['WWW-Authenticate'], ref, timeout)}"
        resp = requests.head(url, headers=headers, timeout=timeout)
    resp.raise_for_status()
    digest = resp.headers.get("Docker-Content-Digest")
    if not digest:
        body = requests.get(url, headers=headers, timeout=timeout)
        body.raise_for_status()
        digest = "sha256:" + hashlib.sha256(body.content).hexdigest()
    if not _DIGEST.match(digest):
        raise LockError(f"registry answered an unusable digest {digest!r} for {reference}")
    return digest


def _token(challenge: str, ref: ImageRef, timeout: float) -> str:
    import requests

    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        raise LockError(f"registry {ref.registry} asked for a token without a realm")
    params.setdefault("scope", f"repository:{ref.repository}:pull")
    resp = requests.get(realm, params=params, timeout=timeout)
    resp.raise_for_status()
    data = resp.json()
    return data.get("token") or data["access_token"]


def local_image_pin(image: str) -> tuple[str, str]:
    """(digest, kind) of a local Docker image: its RepoDigest if any, else its ID."""
    from repropack import docker_api

    client = None
    try:
        client = docker_api.connect(10, ping=False)
        attrs = client.images.get(image).attrs
    except Exception as exc:  # docker raises many unrelated types (connection, not found, API)
        raise LockError(f"no local image {image} ({_short(exc)})") from exc
    finally:
        if client is not None:
            client.close()
    repo = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    for repo_digest in attrs.get("RepoDigests") or []:
        name, _, digest = repo_digest.partition("@")
        if name == repo and _DIGEST.match(digest):
            return digest, "manifest"
    return attrs["Id"], "image-id"


def resolve_base(reference: str | None, override: str | None = None) -> tuple[BasePin, list[str]]:
    """Pin the base image; returns the pin and warnings for the user."""
    if reference is None:
        return BasePin(reference=None, source="unpinned"), []
    override = override or os.environ.get(OVERRIDE_ENV) or None
    if override:
        digest, kind = local_image_pin(override)
        return BasePin(reference, "override", digest, kind, image=override), []
    problems = []
    try:
        return BasePin(reference, "registry", registry_digest(reference), "manifest"), []
    except Exception as exc:  # network errors, HTTP errors, bad answers: all mean "not from the registry"
        problems.append(f"registry {parse_reference(reference).registry}: {_short(exc)}")
    try:
        digest, kind = local_image_pin(reference)
        return BasePin(reference, "local", digest, kind, image=reference), []
    except LockError as exc:
        problems.append(f"docker: {_short(exc)}")
    warning = (f"base image {reference} is unpinned ({'; '.join(problems)}); `repropack build` will refuse it. "
               f"Pin it with `repropack lock --base-override IMAGE` (or {OVERRIDE_ENV}=IMAGE) using a local image")
    return BasePin(reference, "unpinned"), [warning]


def _short(exc: Exception) -> str:
    name = type(exc).__name__
    if name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout"):
        return "unreachable"
    if name == "ImageNotFound":
        return "not found"
    if name == "DockerException":
        return "Docker engine unreachable"
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code}"
    text = " ".join(str(exc).split())
    return text if len(text) <= 120 else text[:117] + "..."
