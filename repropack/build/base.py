"""The pinned base image: its config, its layer tars, and the Python it ships.

The output image is the base's layers, unchanged, followed by ours. They are
read once from the engine (``docker save`` of the image the lock pinned, after
checking that it is that digest) into the project's layer store, keyed by
the base digest, so a warm rebuild does not touch the engine for them.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.build.layers import copy_hashed
from repropack.errors import BuildError

INTERPRETER_DIRS = ("usr/local/bin", "usr/bin")


@dataclass(frozen=True)
class BaseImage:
    reference: str
    digest: str
    pinned: str  # what the engine knows it by: an image ID or repo@digest
    config: dict[str, Any]
    layers: tuple[tuple[str, Path], ...]  # (diff_id, uncompressed tar in the layer store)
    interpreters: tuple[str, ...]  # absolute paths of python3.X found in the base

    def python(self, version: str) -> str | None:
        """The base's interpreter for ``3.X`` (``/usr/local/bin`` first, as python:3.X images have it)."""
        major_minor = ".".join(version.split(".")[:2])
        for directory in INTERPRETER_DIRS:
            path = f"/{directory}/python{major_minor}"
            if path in self.interpreters:
                return path
        return None


def unpinned_error(reference: str | None) -> BuildError:
    return BuildError(
        f"the base image {reference or '(none)'} is not pinned by digest in repropack.lock",
        hint="pin it with `repropack lock` where its registry is reachable, "
        "or `repropack lock --base-override IMAGE` with a local image",
    )


def load_base(engine, pin, store: Path) -> BaseImage:
    """The base image as pinned in the lock (a :class:`repropack.lock.BasePin`), cached under ``store``."""
    if not pin.pinned:
        raise unpinned_error(pin.reference)
    reference, digest = pin.image or pin.reference, pin.digest
    meta_path = store / "base" / f"{digest.split(':', 1)[-1]}.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        layers = tuple((d, store / f"{d.split(':', 1)[1]}.tar") for d in meta["config"]["rootfs"]["diff_ids"])
        if all(path.is_file() for _, path in layers):
            return BaseImage(reference, digest, pin.pinned_reference, meta["config"], layers, tuple(meta["interpreters"]))
    ref = _local_ref(engine, pin)
    config_bytes, layers = _save(engine, ref, store)
    if pin.digest_kind != "manifest" and "sha256:" + hashlib.sha256(config_bytes).hexdigest() != digest:
        raise BuildError(f"the local image {ref} is not the pinned base {digest}", hint="relock with `repropack lock`")
    config = json.loads(config_bytes)
    interpreters = _find_interpreters([path for _, path in layers])
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps({"config": config, "interpreters": interpreters}, sort_keys=True))
    return BaseImage(reference, digest, ref, config, tuple(layers), tuple(interpreters))


def _local_ref(engine, pin) -> str:
    """The engine's name for the pinned image, pulling a registry digest if it is not there yet."""
    ref = pin.pinned_reference
    if engine.image_id(ref) is not None:
        return ref
    if pin.digest_kind == "manifest":
        try:
            engine.pull(ref)
        except Exception as exc:  # noqa: BLE001 - any pull failure gets the same advice
            raise BuildError(
                f"the pinned base image {ref} is not in the local engine and could not be pulled: {exc}",
                hint="pull it where the registry is reachable, or relock with --base-override IMAGE",
            ) from exc
        return ref
    raise BuildError(
        f"the pinned base image {pin.image or pin.reference} ({pin.digest}) is not in the local engine",
        hint="load that exact image again, or relock with --base-override IMAGE",
    )


def _save(engine, ref: str, store: Path) -> tuple[bytes, list[tuple[str, Path]]]:
    """Stream ``docker save`` into the store, checking every layer's bytes against its diff_id."""
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store, prefix=".save-") as tmp:
        members: dict[str, tuple[str, Path]] = {}
        small: dict[str, bytes] = {}
        stream = _IterReader(engine.save(ref))
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for index, member in enumerate(tar):
                if not member.isfile():
                    continue
                fh = tar.extractfile(member)
                if member.name.endswith("layer.tar"):
                    part = Path(tmp) / f"{index}.tar"
                    with open(part, "wb") as out:
                        members[member.name] = (copy_hashed(fh, out)[0], part)
                elif member.size < 16 << 20:
                    small[member.name] = fh.read()
        manifest = json.loads(small["manifest.json"])[0]
        config_bytes = small[manifest["Config"]]
        diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
        layers = []
        for diff_id, name in zip(diff_ids, manifest["Layers"], strict=True):
            actual, part = members[name]
            if actual != diff_id:
                raise BuildError(f"base image layer {name} has digest {actual}, its config says {diff_id}")
            final = store / f"{diff_id.split(':', 1)[1]}.tar"
            if not final.exists():
                shutil.move(part, final)
            layers.append((diff_id, final))
    return config_bytes, layers


class _IterReader:
    """A file-like view of an iterator of byte chunks (what the docker SDK streams)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size
        while wanted != 0:
            if self._offset >= len(self._buffer):
                self._buffer, self._offset = next(self._chunks, b""), 0
                if not self._buffer:
                    break
            end = len(self._buffer) if wanted < 0 else min(len(self._buffer), self._offset + wanted)
            parts.append(self._buffer[self._offset : end])
            if wanted > 0:
                wanted -= end - self._offset
            self._offset = end
        return b"".join(parts)


def _find_interpreters(layer_paths: list[Path]) -> list[str]:
    """Absolute paths of ``python3.N`` in the base's final filesystem (whiteouts applied)."""
    present: set[str] = set()
    for path in layer_paths:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("./")) if member.name not in (".", "./") else ""
                directory, base = posixpath.split(name)
                if base.startswith(".wh."):
                    present.discard(posixpath.join(directory, base[4:]))
                elif directory in INTERPRETER_DIRS and _is_python(base) and not member.isdir():
                    present.add(name)
    return sorted("/" + p for p in present)


def _is_python(name: str) -> bool:
    return name.startswith("python3.") and name[8:].isdigit()
