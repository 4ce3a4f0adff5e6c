"""``repropack build``: base layers + one layer per environment + the workflow files.

The image is written by hand (see :mod:`repropack.build.image`) so its ID is a
function of the lock and the declared files only. Layer order puts what
changes least first: the base, then each environment (sorted by name), then
the workflow files, so a code-only change rebuilds only the last layer and the
environment layers are reused from the layer store (``.repropack/build/layers``),
keyed by the environment's lock hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack import __version__
from repropack.build import context as ctxmod
from repropack.build.base import BaseImage, load_base
from repropack.build.image import ImageSpec, epoch_to_rfc3339, make_config, parse_reference
from repropack.build.layers import Entry, file_entries, normalize_arcname, sha256_file, tree_entries, write_layer
from repropack.build.stage import ENVS_ROOT, PLATFORM, env_prefix, env_variables, stage_environment
from repropack.errors import BuildError
from repropack.human import fmt_bytes

LAYER_SCHEME = "repropack-layer/1"
STORE = Path(".repropack") / "build"


@dataclass
class BuildOptions:
    docker: bool = True
    apptainer: bool = False
    tag: str | None = None
    push: str | None = None
    allow_large: bool = False
    size_limit: int = ctxmod.DEFAULT_SIZE_LIMIT
    containerfile: bool = False
    provision: Any = None  # repropack.lock.Provision: may an environment layer fetch what the cache lacks?


@dataclass
class Layer:
    diff_id: str
    size: int
    path: Path
    created_by: str
    reused: bool = False


@dataclass
class Plan:
    """Everything computed before any engine is touched."""

    root: Path
    reference: str
    epoch: int
    base: BaseImage
    layers: list[Layer]  # ours, after the base's
    config: bytes
    image_id: str
    labels: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def all_layers(self) -> list[tuple[str, Path]]:
        return list(self.base.layers) + [(layer.diff_id, layer.path) for layer in self.layers]


Report = Callable[[str], None]


def source_date_epoch(lockset) -> int:
    """The lock's SOURCE_DATE_EPOCH if it carries one, else the environment's, else 0 (as ko and Bazel)."""
    value = getattr(lockset, "source_date_epoch", None)
    if value is None:
        value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        return int(value)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH must be whole seconds, got {value!r}") from None


def source_state(root: Path) -> dict[str, Any] | None:
    """The last commit touching the project folder and whether the folder has uncommitted changes.

    For the build record only: the image config must not depend on it (an untracked log or an
    unrelated commit would change the image ID); the image carries the context digest instead.
    """
    git = shutil.which("git")
    if git is None:
        return None
    try:
        rev = subprocess.run([git, "log", "-1", "--format=%H", "--", "."], cwd=root, capture_output=True, text=True,
                             timeout=30, check=False)
        if rev.returncode != 0 or not rev.stdout.strip():
            return None
        dirty = subprocess.run([git, "status", "--porcelain", "--", "."], cwd=root, capture_output=True, text=True,
                               timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def default_reference(manifest) -> str:
    name = manifest.image.name or manifest.project.name.lower().replace(" ", "-")
    if ":" in name.rsplit("/", 1)[-1]:
        return name
    return f"{name}:{manifest.project.version or 'latest'}"


def plan_build(manifest, lockset, engine, options: BuildOptions, report: Report) -> Plan:
    root = manifest.root
    reference = str(parse_reference(options.tag or default_reference(manifest)))
    pin = lockset.base
    store = root / STORE / "layers"
    epoch = source_date_epoch(lockset)
    durations: dict[str, float] = {}
    started = time.monotonic()
    report(f"base image {pin.image or pin.reference}")
    base = load_base(engine, pin, store)
    durations["base"] = time.monotonic() - started
    report(f"base image: {len(base.layers)} layer(s), {fmt_bytes(sum(p.stat().st_size for _, p in base.layers))}")
    layers = []
    for name in sorted(lockset.environments):
        started = time.monotonic()
        layers.append(_env_layer(lockset, name, base, store, epoch, report, options.provision))
        durations[f"env:{name}"] = time.monotonic() - started
        _said(report, f"environment {name}", layers[-1])
    started = time.monotonic()
    workflow, warnings = _workflow_layer(manifest, lockset, store, epoch, options)
    layers.append(workflow)
    durations["workflow"] = time.monotonic() - started
    _said(report, "workflow files", workflow)
    labels = _labels(manifest, lockset, base, epoch, workflow.diff_id)
    spec = ImageSpec(epoch=epoch, workdir=manifest.image.workdir, env=_image_env(lockset, base),
                     labels=labels, history=[layer.created_by for layer in layers])
    config = make_config(base.config, [d for d, _ in base.layers] + [l.diff_id for l in layers], spec)
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    return Plan(root, reference, epoch, base, layers, config, image_id, labels, warnings, durations)


def prepare_build(project_root: Path, options: BuildOptions, engine, report: Report):
    """Load the manifest and the fresh lock, connect the engine, plan: what every kind of build starts with."""
    from repropack.lock.freshness import load_lockset
    from repropack.manifest import load_manifest

    manifest = load_manifest(project_root)
    lockset = load_lockset(manifest.root, manifest, check=True)
    if engine is None:
        from repropack.build.engine import DockerEngine

        engine = DockerEngine()
    return manifest, engine, plan_build(manifest, lockset, engine, options, report)


def _said(report: Report, what: str, layer: Layer) -> None:
    report(f"{what}: {fmt_bytes(layer.size)} layer {'reused' if layer.reused else 'built'}")


def _key(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"scheme": LAYER_SCHEME, **data}, sort_keys=True).encode()).hexdigest()


def _env_layer(lockset, name: str, base: BaseImage, store: Path, epoch: int, report: Report, provision=None) -> Layer:
    from repropack.lock.lockfile import environment_lock_hash

    created_by = f"repropack: environment {name} at {env_prefix(name)}"
    key = _key({"env": environment_lock_hash(lockset, name), "prefix": env_prefix(name), "epoch": epoch,
                "base": base.digest, "version": __version__})
    index = store / "keys" / f"{key}.json"
    if index.is_file():
        known = json.loads(index.read_text())
        path = store / f"{known['diff_id'].split(':', 1)[1]}.tar"
        if path.is_file():
            return Layer(known["diff_id"], known["size"], path, created_by, reused=True)
    if provision is not None and provision.fetch:  # only a layer not in the store needs its artifacts
        from repropack.lock.fetcher import fetch

        report(f"fetching environment {name}")
        fetch(lockset, environments=[name], platforms=[PLATFORM], reporter=provision.reporter)
    report(f"staging environment {name}")
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".stage-{name}-", dir=store) as tmp:
        stage = Path(tmp) / "env"
        stage.mkdir()
        stage_environment(lockset, name, stage, base)
        layer = _store_layer(tree_entries(stage, env_prefix(name)), store, epoch, created_by)
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps({"diff_id": layer.diff_id, "size": layer.size}))
    return layer


def _store_layer(entries: list[Entry], store: Path, epoch: int, created_by: str) -> Layer:
    store.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".layer-", suffix=".tar", dir=store)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        info = write_layer(entries, tmp, epoch=epoch)
        final = store / f"{info.diff_id.split(':', 1)[1]}.tar"
        reused = final.is_file()
        if reused:
            tmp.unlink()
        else:
            os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Layer(info.diff_id, info.size, final, created_by, reused=reused)


def _workflow_layer(manifest, lockset, store: Path, epoch: int, options: BuildOptions) -> tuple[Layer, list[str]]:
    from repropack.lock.lockfile import LOCK_NAME

    root = manifest.root
    take, produced = ctxmod.declared_patterns(manifest)
    always = [manifest.path.name, LOCK_NAME] + sorted({p for env in lockset.environments.values() for p in env.files})
    ctx = ctxmod.collect(root, take, produced, always=always, allow_large=options.allow_large,
                         size_limit=options.size_limit)
    workdir = normalize_arcname(manifest.image.workdir)
    pairs = [(f"{workdir}/{rel}", path) for rel, path in ctx.files.items()]
    entries = file_entries(pairs) if pairs else [Entry(workdir, "dir")]
    if not any(e.arcname == workdir for e in entries):
        entries = sorted([*entries, Entry(workdir, "dir")], key=lambda e: e.arcname)
    layer = _store_layer(entries, store, epoch, f"repropack: workflow files at {manifest.image.workdir}")
    return layer, ctx.warnings(options.size_limit)


def _image_env(lockset, base: BaseImage) -> dict[str, str]:
    base_env = dict(item.partition("=")[::2] for item in (base.config.get("config") or {}).get("Env") or [])
    base_path = base_env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    names = sorted(lockset.environments)
    if not names:
        return {}
    default = "default" if "default" in names else names[0]
    return {**env_variables(default, base_path), "REPROPACK_ENVS": ENVS_ROOT}


def _labels(manifest, lockset, base: BaseImage, epoch: int, context_digest: str) -> dict[str, str]:
    from repropack.lock.lockfile import LOCK_NAME

    project = manifest.project
    labels = {
        "org.opencontainers.image.title": project.name,
        "org.opencontainers.image.created": epoch_to_rfc3339(epoch),
        "org.opencontainers.image.base.name": base.reference,
        "org.opencontainers.image.base.digest": base.digest,
        "io.repropack.version": __version__,
        "io.repropack.manifest.sha256": sha256_file(manifest.path),
        "io.repropack.manifest.inputs-hash": lockset.manifest_hash,
        "io.repropack.lock.sha256": sha256_file(lockset.root / LOCK_NAME),
        "io.repropack.environments": ",".join(f"{n}={env_prefix(n)}" for n in sorted(lockset.environments)),
        "io.repropack.source-date-epoch": str(epoch),
        "io.repropack.context.digest": context_digest,  # the workflow files in the image, nothing else
    }
    optional = {
        "org.opencontainers.image.version": project.version,
        "org.opencontainers.image.description": project.description,
        "org.opencontainers.image.licenses": project.license,
        "org.opencontainers.image.authors": ", ".join(project.authors) or None,
        "org.opencontainers.image.source": project.source,
        "org.opencontainers.image.url": project.url,
    }
    labels.update({k: v for k, v in optional.items() if v})
    return labels
