"""``repropack pack``: one deterministic archive of a project, ready to publish with a paper."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repropack.archive import format as fmt
from repropack.archive import parts
from repropack.archive.writer import write_archive


@dataclass(frozen=True)
class PackOptions:
    with_images: bool = False
    with_inputs: bool = False
    with_outputs: bool = False
    sign_key: Path | None = None
    threads: int | None = None


@dataclass
class Packed:
    path: Path
    index: dict
    size: int
    warnings: list[str] = field(default_factory=list)


def default_name(manifest) -> str:
    version = f"-{manifest.project.version}" if getattr(manifest.project, "version", None) else ""
    return f"{manifest.project.name}{version}{fmt.SUFFIX}"


def gather(root: Path, options: PackOptions) -> list[parts.Gathered]:
    """Every part's members, checked (locks fresh, packages cached, outputs as recorded) before writing."""
    from repropack.lock import load_lockset
    from repropack.manifest.loader import load_manifest

    manifest = load_manifest(root)
    lockset = load_lockset(root, manifest, check=True)
    project = parts.Gathered(index={"project": {"name": manifest.project.name,
                                                "version": getattr(manifest.project, "version", None),
                                                "manifest": f"{parts.PROJECT}/{manifest.path.name}"},
                                    "environments": sorted(lockset.environments)})
    gathered = [project, parts.workflow(manifest, lockset, options.with_inputs), parts.packages(lockset),
                parts.records(root), parts.published(root, options.with_outputs, manifest.compare)]
    if options.with_images:
        gathered.append(parts.images(root))
    return gathered


def pack(root: Path, out: Path, options: PackOptions = PackOptions(),
         progress: Callable[[int], None] = lambda _n: None,
         on_total: Callable[[int], None] = lambda _n: None) -> Packed:
    """Write the archive of the project at ``root`` to ``out`` (atomically: a failure leaves no file)."""
    from repropack import __version__

    root = Path(root).resolve()
    gathered = gather(root, options)
    sources = [s for g in gathered for s in g.sources]
    extra = {"repropack_version": __version__}
    for g in gathered:
        extra.update(g.index)
    on_total(sum(s.size() for s in sources))
    signer = None
    if options.sign_key is not None:
        from repropack.archive.sign import sign

        key = Path(options.sign_key)
        signer = lambda data: sign(data, key)  # noqa: E731
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            index = write_archive(handle, sources, threads=options.threads, extra_index=extra, signer=signer,
                                  progress=progress)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Packed(out, index, out.stat().st_size, [w for g in gathered for w in g.warnings])
