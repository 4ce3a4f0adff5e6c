"""Canonical image config, registry manifest and docker-save archive.

Docker loads a docker-save archive and names the image by the sha256 of the
config bytes, so the config is serialized canonically (sorted keys, no
whitespace) from inputs that are all fixed by the lock: the base config, the
layer diff_ids and a ``created`` time equal to SOURCE_DATE_EPOCH. Nothing here
reads the clock.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from repropack.errors import BuildError, UsageError

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# Keys of the base config that describe the runtime and carry over unchanged.
_INHERITED = ("Entrypoint", "Cmd", "User", "ExposedPorts", "Volumes", "StopSignal", "Shell")

# name components: lowercase alnum separated by . _ __ or dashes (the distribution reference grammar)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference such as ``127.0.0.1:5000/lab/quickstart:1.0``."""

    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse an image reference; a bad one is a UsageError naming the rule it breaks."""
    match = _REFERENCE.match(text or "")
    if not match or len(text) > 255:
        raise UsageError(
            f"invalid image reference {text!r}",
            hint="use lowercase name components separated by '/', optionally ':tag' (e.g. lab/quickstart:1.0)",
        )
    domain = match["domain"]
    path = match["path"]
    # "localhost/x" or "host.tld/x" or "host:port/x" name a registry; "lab/x" is a path.
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        path = f"{domain}/{path}"
        domain = None
    return Reference(domain, path, match["tag"], match["digest"])


def epoch_to_rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """Everything the config depends on besides the layers."""

    epoch: int
    workdir: str
    env: Mapping[str, str]
    labels: Mapping[str, str]
    architecture: str = "amd64"
    os: str = "linux"
    history: Sequence[str] = field(default_factory=tuple)  # created_by for each added layer


def merge_env(base_env: Sequence[str], updates: Mapping[str, str]) -> list[str]:
    """The base's ``KEY=value`` list with ``updates`` applied, in the base's order then sorted new keys."""
    merged: dict[str, str] = {}
    for item in base_env:
        key, _, value = item.partition("=")
        merged[key] = value
    extra = sorted(k for k in updates if k not in merged)
    merged.update(updates)
    order = [k for k in merged if k not in extra] + extra
    return [f"{k}={merged[k]}" for k in order]


def make_config(base_config: Mapping[str, Any], diff_ids: Sequence[str], spec: ImageSpec) -> bytes:
    """The image config JSON bytes; the image ID is their sha256."""
    base_runtime = base_config.get("config") or {}
    runtime: dict[str, Any] = {k: base_runtime[k] for k in _INHERITED if base_runtime.get(k) is not None}
    runtime["Env"] = merge_env(base_runtime.get("Env") or [], spec.env)
    runtime["WorkingDir"] = spec.workdir
    runtime["Labels"] = {**(base_runtime.get("Labels") or {}), **spec.labels}
    created = epoch_to_rfc3339(spec.epoch)
    base_diff_ids = list((base_config.get("rootfs") or {}).get("diff_ids") or [])
    history = [_history_entry(h) for h in base_config.get("history") or []]
    if not history:
        history = [{"created": created, "created_by": "base image"} for _ in base_diff_ids]
    history += [{"created": created, "created_by": text} for text in spec.history]
    if len(diff_ids) != len(base_diff_ids) + len(spec.history):
        raise BuildError("internal: history and layers disagree")
    config = {
        "architecture": spec.architecture,
        "os": spec.os,
        "created": created,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": history,
    }
    return canonical_json(config)


def _history_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("created", "created_by", "empty_layer", "comment")
    return {k: entry[k] for k in keep if k in entry}


def make_manifest(config_digest: str, config_size: int, blobs: Sequence[tuple[str, int]]) -> bytes:
    """The registry manifest (Docker v2 schema 2) for gzip-compressed layer blobs."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "size": config_size, "digest": config_digest},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "size": size, "digest": digest} for digest, size in blobs],
    }
    return canonical_json(manifest)


def write_docker_archive(
    out: Path,
    config: bytes,
    config_digest: str,
    layers: Sequence[tuple[str, Path]],
    *,
    tags: Sequence[str] = (),
    omit: int = 0,
) -> None:
    """Write a docker-save archive: ``manifest.json``, the config and one ``layer.tar`` per diff_id.

    ``omit``: leave out the files of the first N layers, which the engine
    already has (Docker's loader looks a layer up by chain ID before it opens
    its file), so a rebuild does not copy the base through the archive again.
    Written to a temporary name and renamed, so a full disk leaves no archive
    that a later step could load half-written.
    """
    hexid = config_digest.split(":", 1)[1]
    entries: list[tuple[str, bytes | Path]] = [(f"{hexid}.json", config)]
    layer_names = []
    for index, (diff_id, path) in enumerate(layers):
        name = f"{diff_id.split(':', 1)[1]}/layer.tar"
        if name not in layer_names and index >= omit:
            entries.append((name, path))
        layer_names.append(name)
    manifest = [{"Config": f"{hexid}.json", "RepoTags": list(tags) or None, "Layers": layer_names}]
    entries.append(("manifest.json", json.dumps(manifest, sort_keys=True).encode()))
    tmp = out.with_name(out.name + ".part")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted({n.split("/")[0] for n, _ in entries if "/" in n}):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for name, content in sorted(entries, key=lambda e: e[0]):
                _add_member(tar, name, content)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _add_member(tar: tarfile.TarFile, name: str, content: bytes | Path) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if isinstance(content, bytes):
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
        return
    with open(content, "rb") as fh:
        info.size = os.fstat(fh.fileno()).st_size
        tar.addfile(info, fh)
