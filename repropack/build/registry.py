"""Push through the Registry HTTP API v2, with the blobs exactly as we compressed them.

``docker push`` would recompress the layers, and its gzip output is not
guaranteed stable, so the pushed digest could move between rebuilds. Uploading
our own deterministic blobs and a canonical manifest makes the manifest digest
a pure function of the lock and the workflow files. Loopback registries are
spoken to over http (as Docker treats them); anything else over https.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.build.image import MEDIA_MANIFEST
from repropack.errors import BuildError, EngineUnavailable

LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    path: Path | None = None  # on disk, or
    data: bytes | None = None  # in memory (the config)


class Registry:
    """One registry host such as ``127.0.0.1:5000``."""

    def __init__(self, host: str, *, timeout: float = 60.0):
        self.host = host
        self.base = f"{'http' if LOOPBACK.match(host) else 'https'}://{host}"
        self.timeout = timeout
        import requests

        self.session = requests.Session()
        if LOOPBACK.match(host):
            self.session.trust_env = False  # a proxy from the environment would not reach our loopback
        self._token: str | None = None

    def push(self, repository: str, tag: str, manifest: bytes, blobs: Sequence[Blob]) -> str:
        """Upload missing blobs, then the manifest under ``tag``; returns the manifest digest."""
        for blob in blobs:
            if not self._has_blob(repository, blob.digest):
                self._upload(repository, blob)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        response = self._request(
            "PUT", f"/v2/{repository}/manifests/{tag}", data=manifest, headers={"Content-Type": MEDIA_MANIFEST}
        )
        self._expect(response, (201,), f"upload the manifest of {repository}:{tag}")
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise BuildError(f"registry {self.host} stored the manifest as {returned}, expected {digest}")
        return digest

    def _has_blob(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}")
        return response.status_code == 200

    def _upload(self, repository: str, blob: Blob) -> None:
        response = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        self._expect(response, (202,), f"start a blob upload to {repository}")
        location = response.headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        separator = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        if blob.data is not None:
            response = self._request("PUT", f"{location}{separator}digest={blob.digest}", data=blob.data, headers=headers)
        else:
            with open(blob.path, "rb") as fh:
                response = self._request("PUT", f"{location}{separator}digest={blob.digest}", data=fh, headers=headers)
        self._expect(response, (201,), f"upload blob {blob.digest} to {repository}")

    def _request(self, method: str, path: str, **kwargs: Any):
        import requests

        url = path if path.startswith("http") else self.base + path
        headers = dict(kwargs.pop("headers", {}) or {})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            if response.status_code == 401 and self._token is None and self._authenticate(response):
                headers["Authorization"] = f"Bearer {self._token}"
                data = kwargs.get("data")
                if hasattr(data, "seek"):
                    data.seek(0)
                response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(
                "registry", f"nothing answers at {self.base}", hint="start the registry or check --push HOST[:PORT]"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable("registry", f"{self.base}: {type(exc).__name__}") from exc
        return response

    def _authenticate(self, response) -> bool:
        """Follow a Bearer challenge, with REPROPACK_REGISTRY_USER/PASSWORD if set (never logged)."""
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer "):
            return False
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            return False
        user, password = os.environ.get("REPROPACK_REGISTRY_USER"), os.environ.get("REPROPACK_REGISTRY_PASSWORD")
        auth = (user, password) if user and password else None
        token = self.session.get(realm, params=params, auth=auth, timeout=self.timeout)
        if token.status_code != 200:
            return False
        body = token.json()
        self._token = body.get("token") or body.get("access_token")
        return bool(self._token)

    def _expect(self, response, codes: tuple[int, ...], what: str) -> None:
        if response.status_code not in codes:
            detail = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            raise BuildError(f"registry {self.host} refused to {what}: HTTP {response.status_code} {detail}".rstrip())


def split_push_target(target: str) -> tuple[str, str]:
    """``127.0.0.1:5000/lab`` -> (host, namespace); the image's own name is appended by the caller."""
    host, _, namespace = target.strip().rstrip("/").partition("/")
    if not host or any(c in host for c in "@ "):
        raise BuildError(f"invalid --push target {target!r}", hint="give a registry as HOST[:PORT][/NAMESPACE]")
    return host, namespace
