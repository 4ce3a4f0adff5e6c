"""What ``repropack pack`` puts in each part of the archive, gathered from a project.

Each function returns the :class:`~repropack.archive.writer.Source` list of one part plus what the
index should say about it. Nothing is read beyond names and sizes here: the writer hashes while
compressing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.archive.writer import Source, tree_sources
from repropack.errors import ArchiveError, UsageError

PROJECT = "project"
CACHE_PREFIX = "cache"  # the packages as a repropack cache: REPROPACK_CACHE=<unpacked>/cache
RECORD_FILES = ("run.json", "instances.jsonl", "SHA256SUMS")
RECORD_DIRS = ("results", "provenance")


@dataclass
class Gathered:
    sources: list[Source] = field(default_factory=list)
    index: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def workflow(manifest, lockset, with_inputs: bool) -> Gathered:
    """The manifest, locks and step sources (``project``) and, when asked, the inputs (``inputs``)."""
    from repropack.build import context as ctxmod
    from repropack.lock.lockfile import LOCK_NAME

    root = Path(manifest.root)
    always = [manifest.path.name, LOCK_NAME] + sorted({p for env in lockset.environments.values() for p in env.files})
    origins = sorted({str(Path(s.origin).resolve().relative_to(root.resolve())) for s in manifest.steps
                      if getattr(s, "origin", None) and Path(s.origin).resolve().is_relative_to(root.resolve())})
    sources = [p for step in manifest.steps for p in step.sources]
    _, produced = ctxmod.declared_patterns(manifest)
    code = ctxmod.collect(root, sources, produced, always=always + origins, allow_large=True)
    inputs = [spec.pattern for step in manifest.steps for spec in step.inputs]
    inputs += [item.path for item in manifest.data.values()]
    data = ctxmod.collect(root, inputs, produced, allow_large=True)
    out = Gathered(warnings=code.warnings(0) + [w for w in data.warnings(0) if w not in code.warnings(0)])
    out.warnings = [w for w in out.warnings if "over the" not in w]
    for rel, path in code.files.items():
        out.sources.append(_file(f"{PROJECT}/{rel}", "project", path))
    bundled = {rel for rel in data.files if rel not in code.files}
    if with_inputs:
        for rel in sorted(bundled):
            out.sources.append(_file(f"{PROJECT}/{rel}", "inputs", data.files[rel]))
    elif bundled:
        out.warnings.append(f"{len(bundled)} input file(s) not bundled (pass --with-inputs); a rerun needs them")
    out.index["data"] = [{"name": item.name, "path": item.path, "sha256": item.sha256, "url": item.url,
                          "bundled": with_inputs and item.path in bundled}
                         for item in sorted(manifest.data.values(), key=lambda d: d.name)]
    return out


def _file(arcname: str, part: str, path: Path) -> Source:
    if path.is_symlink():
        return Source(arcname, part, link=os.readlink(path))
    return Source(arcname, part, file=path, executable=bool(path.stat().st_mode & 0o100))


def packages(lockset) -> Gathered:
    """Every locked artifact (conda packages and wheels, all platforms) from the verified cache."""
    from repropack.lock.cache import ArtifactCache
    from repropack.lock.fetcher import all_artifacts

    cache = ArtifactCache()
    artifacts = sorted(all_artifacts(lockset), key=lambda a: a.sha256)
    found = cache.lookup_many([(a.sha256, a.filename) for a in artifacts])
    missing = [a.label for a, path in zip(artifacts, found) if path is None]
    if missing:
        raise UsageError(f"{len(missing)} locked package(s) are not in the cache ({', '.join(missing[:3])}...)"
                         if len(missing) > 3 else f"not in the cache: {', '.join(missing)}",
                         hint="run `repropack fetch` first")
    out = Gathered()
    for artifact, path in zip(artifacts, found):
        rel = path.relative_to(cache.root).as_posix()
        out.sources.append(Source(f"{CACHE_PREFIX}/{rel}", "packages", file=path))
    out.index["packages"] = len(artifacts)
    return out


def images(root: Path) -> Gathered:
    """The last build's docker-save archive and SIF, named by image ID; the SIF by its content digest."""
    from repropack.build.builder import STORE
    from repropack.build.record import latest_record

    record = latest_record(root)
    if not record:
        raise UsageError("--with-images: no image was built", hint="run `repropack build --docker --apptainer`")
    image = record["image"]
    hexid = image["id"].split(":", 1)[-1]
    out = Gathered()
    info: dict[str, Any] = {"id": image["id"], "reference": image.get("reference")}
    docker = root / STORE / "images" / f"{hexid}.tar"
    if docker.is_file():
        info["docker"] = f"images/docker/{hexid}.tar"
        out.sources.append(Source(info["docker"], "images", file=docker))
    sif = record.get("sif") or {}
    if sif.get("path") and Path(sif["path"]).is_file() and sif.get("image_id") == image["id"]:
        info["sif"] = {"member": f"images/sif/{hexid}.sif", "content_digest": sif.get("content_digest")}
        out.sources.append(Source(info["sif"]["member"], "images", file=Path(sif["path"])))
    if "docker" not in info and "sif" not in info:
        raise UsageError("--with-images: the last build left neither its docker-save archive nor its SIF",
                         hint="run `repropack build --docker --apptainer` again")
    out.index["image"] = info
    return out


def records(root: Path) -> Gathered:
    """The last run's records (run.json, instances, results, SHA256SUMS) and its provenance crate and SBOMs."""
    from repropack.run.rundir import latest_run, run_root

    out = Gathered()
    run_id = latest_run(root)
    if run_id is None or not run_root(root, run_id).is_dir():
        return out
    run_dir = run_root(root, run_id)
    for name in RECORD_FILES:
        if (run_dir / name).is_file() and not (run_dir / name).is_symlink():
            out.sources.append(Source(f"records/{run_id}/{name}", "records", file=run_dir / name))
    for name in RECORD_DIRS:
        if (run_dir / name).is_dir() and not (run_dir / name).is_symlink():
            out.sources += [Source(s.path, "records", file=s.file, link=s.link, executable=s.executable)
                            for s in tree_sources(run_dir / name, f"records/{run_id}/{name}", "records")]
    out.index["run"] = run_id
    return out


def published(root: Path, with_outputs: bool, rules=()) -> Gathered:
    """The digests a rerun compares with: the last run's SHA256SUMS, else the journal; checked now."""
    from repropack.run.checksums import format_checksums, parse_checksums
    from repropack.run.rundir import latest_run, run_root
    from repropack.run.verify import expected_digests, verify

    run_id = latest_run(root)
    sums = run_root(root, run_id) / "SHA256SUMS" if run_id else None
    if sums is not None and sums.is_file():
        expected = parse_checksums(sums.read_text(encoding="utf-8"), source=str(sums), root=root)
    else:
        expected = expected_digests(root)
    if not expected:
        raise UsageError("nothing to publish: no finished run", hint="run `repropack run` first")
    report = verify(root, expected)
    if report["changed"]:
        first = report["changed"][0]["path"]
        raise ArchiveError(f"{len(report['changed'])} output(s) differ from what the run recorded (first: {first})",
                           hint="run `repropack run` (or `repropack verify`) before packing")
    current = {path: expected[path] for path in report["ok"]}
    out = Gathered(index={"published": len(current), "compare": _kept_digests(root, current, rules)})
    out.sources.append(Source("published/SHA256SUMS", "published", data=format_checksums(current).encode()))
    if with_outputs:
        out.sources += [Source(f"published/outputs/{path}", "outputs", file=root / path) for path in sorted(current)
                        if (root / path).is_file()]
    if report["missing"]:
        out.warnings.append(f"{len(report['missing'])} recorded output(s) no longer exist and are not published")
    return out


def _kept_digests(root: Path, current: dict[str, str], rules) -> dict[str, str]:
    """For outputs under an ignore-lines rule: the digest of their text without the ignored lines."""
    from repropack.archive.compare import kept_digest, rule_for

    out = {}
    for path in sorted(current):
        rule = rule_for(path, rules)
        if rule is not None and rule.rule == "ignore-lines":
            digest = kept_digest(root / path, rule.ignore_lines)
            if digest is not None:
                out[path] = digest
    return out
