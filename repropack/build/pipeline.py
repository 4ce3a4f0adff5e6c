"""From a :class:`~repropack.build.builder.Plan` to a loaded image, a pushed manifest, a SIF and a record.

Each output is skipped when it already exists for this image ID (the engine
has the image; the registry has every blob; the recorded SIF still has its
recorded sha256), which is what makes a no-change rebuild take about a second.
A tag is moved only after the engine loaded the complete archive and reported
the expected ID, so a failed export never leaves a tag on something partial.
"""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path
from typing import Any

from repropack.build import apptainer as sifmod
from repropack.build.builder import STORE, BuildOptions, Plan, Report, prepare_build, source_state
from repropack.build.image import make_manifest, write_docker_archive
from repropack.build.layers import gzip_layer, sha256_file
from repropack.build.record import latest_record, write_record
from repropack.build.registry import Blob, Registry, split_push_target
from repropack.errors import BuildError


def build(project_root: Path, options: BuildOptions, *, engine=None, report: Report = lambda _: None) -> dict[str, Any]:
    """Build what ``options`` asks for; returns the build record (also written under .repropack/builds/)."""
    started = time.monotonic()
    _, engine, plan = prepare_build(project_root, options, engine, report)
    previous = latest_record(plan.root)
    outputs: dict[str, Any] = {"docker": None, "pushed": None, "sif": None}
    if options.docker:
        outputs["docker"] = _timed(plan, "docker", lambda: load_into_engine(plan, engine, previous, report))
    if options.push:
        outputs["pushed"] = _timed(plan, "push", lambda: push(plan, options.push, report))
    if options.apptainer:
        outputs["sif"] = _timed(plan, "sif", lambda: build_sif(plan, previous, report))
    plan.durations["total"] = time.monotonic() - started
    record = _record(plan, outputs)
    record["path"] = str(write_record(plan.root, record))
    return record


def _timed(plan: Plan, name: str, fn):
    started = time.monotonic()
    result = fn()
    plan.durations[name] = time.monotonic() - started
    return result


def archive_path(plan: Plan) -> Path:
    return plan.root / STORE / "images" / f"{plan.image_id.split(':', 1)[1]}.tar"


def ensure_archive(plan: Plan, report: Report) -> Path:
    """The full docker-save archive of the image (written once per image ID; older ones removed)."""
    path = archive_path(plan)
    if path.is_file():
        return path
    _write_archive(plan, path, report)
    for old in path.parent.glob("*.tar"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def _write_archive(plan: Plan, path: Path, report: Report, *, omit: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    report("writing the image archive")
    try:
        write_docker_archive(path, plan.config, plan.image_id, plan.all_layers, omit=omit)
    except OSError as exc:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise BuildError(f"could not write the image archive {path}: {reason}; nothing was loaded or tagged") from exc


def load_into_engine(plan: Plan, engine, previous: dict[str, Any] | None, report: Report) -> dict[str, Any]:
    present = engine.image_id(plan.image_id) == plan.image_id
    if not present:
        shared = _layers_in_engine(plan, engine, previous)
        if archive_path(plan).is_file() or not shared:
            _load(plan, engine, ensure_archive(plan, report), report)
        else:
            partial = archive_path(plan).with_suffix(".partial.tar")
            try:
                _write_archive(plan, partial, report, omit=shared)
                _load(plan, engine, partial, report)
            except BuildError:  # a layer went away meanwhile: send everything
                _load(plan, engine, ensure_archive(plan, report), report)
            finally:
                partial.unlink(missing_ok=True)
    engine.tag(plan.image_id, plan.reference)
    return {"id": plan.image_id, "reference": plan.reference, "loaded": not present}


def _load(plan: Plan, engine, archive: Path, report: Report) -> None:
    report("loading the image into docker")
    got = engine.load(archive)
    if got != plan.image_id:
        raise BuildError(f"docker loaded {archive} as {got}, expected {plan.image_id}; the tag was not moved")


def _layers_in_engine(plan: Plan, engine, previous: dict[str, Any] | None) -> int:
    """How many leading layers the engine surely has: the base's, or a still-present previous build's."""
    ours = [diff_id for diff_id, _ in plan.all_layers]
    shared = len(plan.base.layers) if engine.image_id(plan.base.pinned) is not None else 0
    image = (previous or {}).get("image") or {}
    if image.get("id") and engine.image_id(image["id"]) == image["id"]:
        theirs = list(image["base"]["layers"]) + [layer["diff_id"] for layer in image["layers"]]
        common = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        shared = max(shared, common)
    return min(shared, len(ours) - 1)


def push(plan: Plan, target: str, report: Report) -> dict[str, Any]:
    """Push the image with our deterministic gzip blobs; returns the pullable ``repo@digest``."""
    host, namespace = split_push_target(target)
    name_tag = plan.reference.split("/", 1)[1] if "/" in plan.reference and _has_domain(plan.reference) else plan.reference
    name, _, tag = name_tag.rpartition(":") if ":" in name_tag.rsplit("/", 1)[-1] else (name_tag, "", "latest")
    repository = f"{namespace}/{name}" if namespace else name
    blobs = [Blob(plan.image_id, len(plan.config), data=plan.config)]
    for diff_id, path in plan.all_layers:
        blobs.append(_compressed(diff_id, path, report))
    manifest = make_manifest(plan.image_id, len(plan.config), [(b.digest, b.size) for b in blobs[1:]])
    report(f"pushing to {host}/{repository}:{tag}")
    digest = Registry(host).push(repository, tag, manifest, blobs)
    return {"repository": f"{host}/{repository}", "tag": tag, "digest": digest,
            "reference": f"{host}/{repository}@{digest}"}


def _has_domain(reference: str) -> bool:
    first = reference.split("/", 1)[0]
    return "." in first or ":" in first or first == "localhost"


def _compressed(diff_id: str, path: Path, report: Report) -> Blob:
    """The layer's deterministic gzip blob, made once and kept next to the tar."""
    gz = path.with_suffix(".tar.gz")
    meta = path.with_suffix(".gz.json")
    if gz.is_file() and meta.is_file():
        known = json.loads(meta.read_text())
        if known.get("diff_id") == diff_id:
            return Blob(known["digest"], known["size"], path=gz)
    report(f"compressing layer {diff_id[7:19]}")
    digest, size = gzip_layer(path, gz)
    meta.write_text(json.dumps({"diff_id": diff_id, "digest": digest, "size": size}))
    return Blob(digest, size, path=gz)


def sif_path(plan: Plan) -> Path:
    name = plan.reference.rsplit("/", 1)[-1].replace(":", "_")
    return plan.root / ".repropack" / "images" / f"{name}.sif"


def build_sif(plan: Plan, previous: dict[str, Any] | None, report: Report) -> dict[str, Any]:
    path = sif_path(plan)
    known = (previous or {}).get("sif") or {}
    if (known.get("image_id") == plan.image_id and known.get("path") == str(path) and path.is_file()
            and sha256_file(path) == known.get("sha256")):
        return {**known, "rebuilt": False}
    sifmod.find_apptainer()  # fail before writing a large archive
    archive = ensure_archive(plan, report)
    path.parent.mkdir(parents=True, exist_ok=True)
    report("building the SIF with apptainer")
    sifmod.build_sif(archive, path)
    report("hashing the SIF's filesystem")
    return {"path": str(path), "image_id": plan.image_id, "sha256": sha256_file(path),
            "content_digest": sifmod.content_digest(path), "size": path.stat().st_size, "rebuilt": True}


def _record(plan: Plan, outputs: dict[str, Any]) -> dict[str, Any]:
    from repropack import __version__

    base_size = sum(path.stat().st_size for _, path in plan.base.layers)
    return {
        "repropack": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "project": str(plan.root),
        "image": {
            "id": plan.image_id,
            "reference": plan.reference,
            "source_date_epoch": plan.epoch,
            "labels": plan.labels,
            "base": {"reference": plan.base.reference, "digest": plan.base.digest,
                     "layers": [d for d, _ in plan.base.layers], "size": base_size},
            "layers": [{"diff_id": l.diff_id, "size": l.size, "created_by": l.created_by, "reused": l.reused}
                       for l in plan.layers],
            "size": base_size + sum(l.size for l in plan.layers),
        },
        "docker": outputs["docker"],
        "pushed": outputs["pushed"],
        "sif": outputs["sif"],
        "source": source_state(plan.root),  # the checkout it was built from: here, not in the image config
        "warnings": plan.warnings,
        "durations": {k: round(v, 3) for k, v in plan.durations.items()},
    }
