"""Provenance of a run: a Provenance Run Crate (RO-Crate 1.1) and one CycloneDX SBOM per environment.

Built from the run records only (:mod:`repropack.provenance.source` reads them into the
:class:`~repropack.provenance.model.RunFacts` the builders take). Written beside the records::

    .repropack/runs/<run-id>/provenance/
        ro-crate-metadata.json      the crate; its root is the project folder (docs/provenance.md)
        sbom/<env>.cdx.json         CycloneDX 1.6 JSON of each environment

:func:`write_provenance` is what ``repropack run`` calls at its end and ``repropack provenance``
calls for an earlier run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from repropack.provenance.model import RunFacts

CRATE_NAME = "ro-crate-metadata.json"
PROVENANCE_DIR = "provenance"
SBOM_DIR = "sbom"
SBOM_CACHE = Path(".repropack") / "cache" / "sbom"


@dataclass
class Written:
    crate: Path
    sboms: dict[str, Path] = field(default_factory=dict)
    packages: dict[str, int] = field(default_factory=dict)  # environment -> packages in its SBOM
    actions: int = 0


def default_dir(root: Path, run_id: str) -> Path:
    from repropack.run.rundir import run_root

    return run_root(Path(root), run_id) / PROVENANCE_DIR


def write_facts(facts: RunFacts, out_dir: Path, redactor: object | None = None) -> Written:
    """Write the crate and the SBOMs of ``facts`` into ``out_dir`` (each file replaced atomically)."""
    from repropack.provenance.crate import build_crate
    from repropack.provenance.sbom import environments_of

    root = Path(facts.root).resolve()
    out_dir = Path(out_dir).resolve()
    written = Written(crate=out_dir / CRATE_NAME)
    ids: dict[str, str] = {}
    for env in environments_of(facts):
        text, count = _sbom(facts, env, root)
        path = out_dir / SBOM_DIR / f"{_safe(env.name)}.cdx.json"
        _write_atomic(path, text)
        written.sboms[env.name], written.packages[env.name] = path, count
        ids[env.name] = os.path.relpath(path, root) if path.is_relative_to(root) else path.as_uri()
    data = build_crate(facts, ids, redactor)  # type: ignore[arg-type]
    _write_atomic(written.crate, dumps_crate(data))
    written.actions = len(facts.instances)
    return written


def _sbom(facts: RunFacts, env: object, root: Path) -> tuple[str, int]:
    """(text, packages) of an environment's SBOM, from the cache when an earlier run made the same one."""
    from repropack.provenance.sbom import build_sbom, sbom_key

    cached = root / SBOM_CACHE / f"{sbom_key(facts, env)}.cdx.json"  # type: ignore[arg-type]
    try:
        text = cached.read_text(encoding="utf-8")
        return text, sum(1 for c in json.loads(text).get("components", []) if c.get("type") == "library")
    except (OSError, ValueError):
        pass
    text, count = build_sbom(facts, env, root)  # type: ignore[arg-type]
    if '"repropack:problem"' not in text:  # a SBOM missing packages is not worth keeping
        try:
            _write_atomic(cached, text)
        except OSError:
            pass  # a cache that cannot be written costs the next run 0.4 s, nothing else
    return text, count


def write_provenance(root: Path, run_id: str | None = None, out_dir: Path | None = None) -> Written:
    """Read a run's records (default: the last run) and write its crate and SBOMs
    (default: into the run's own directory)."""
    from repropack.provenance.source import read_facts

    facts, _ = read_facts(Path(root), run_id)  # already masked with the run's own secrets
    target = out_dir if out_dir is not None else default_dir(Path(root), facts.run_id)
    return write_facts(facts, target)


def dumps_crate(data: dict) -> str:
    """One entity per line: readable and diffable, and written by json's C encoder (``indent``
    would switch to the pure-Python one, seconds for a run of 10,000 instances)."""
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    lines = ",\n".join(json.dumps(entity, **compact) for entity in data["@graph"])
    return f'{{"@context": {json.dumps(data["@context"], **compact)},\n"@graph": [\n{lines}\n]}}\n'


def record_run(root: Path, run_id: str) -> str | None:
    """Write the provenance of a run that just ended; None, or the one line saying why it could not be.

    Called from the runner's tear-down (after a success, a failure or an interruption): whatever
    goes wrong here is reported and never changes how the run ended, so every error is caught.
    """
    try:
        write_provenance(root, run_id)
    except Exception as exc:  # noqa: BLE001 - see the docstring: a run's outcome is not provenance's to change
        return f"provenance of run {run_id} not written: {exc} (retry: repropack provenance {run_id})"
    return None


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "environment"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)  # replaces the entry (a link planted at ``path`` is replaced, not followed)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["CRATE_NAME", "RunFacts", "Written", "default_dir", "record_run", "write_facts", "write_provenance"]
