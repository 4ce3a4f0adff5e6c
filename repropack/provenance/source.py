"""Run records -> :class:`RunFacts`, through the one records reader (formats 1 and 2).

Everything comes from what the run recorded. Three things the records hold only by digest are
read from the project when, and only when, the file's sha256 equals the recorded one (so they
are the bytes the run used, not today's): ``repropack.lock`` (each environment's lock files and
the base image pin) and ``repropack.toml`` (the parameter defaults a run did not override, and
the project's license). A file that changed since is left out, and the facts say nothing rather
than something the run did not use.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

from repropack.provenance.model import AttemptFact, BaseImageFact, EnvironmentFact, FileFact, InstanceFact, RunFacts
from repropack.redact import MASK, SECRET_NAME, Redactor


def read_facts(root: Path, run_id: str | None = None, redactor: Redactor | None = None) -> tuple[RunFacts, Redactor]:
    """The facts of run ``run_id`` (default: the last run) of the project at ``root``, secrets masked,
    and the redactor that masks this run's secrets (``redactor``'s values are masked too). Raises UsageError when there is no such run and
    FormatVersionError for records of a newer format."""
    from repropack.errors import UsageError
    from repropack.run.records.reader import open_run
    from repropack.run.rundir import latest_run

    root = Path(root).resolve()
    run_id = run_id or latest_run(root)
    if not run_id:
        raise UsageError(f"no run recorded in {root} yet (run `repropack run` first)")
    try:
        view = open_run(root, run_id)
    except FileNotFoundError:
        raise UsageError(f"no run {run_id!r} in {root / '.repropack' / 'runs'}") from None
    return facts_from_view(root, view, redactor)


def facts_from_view(root: Path, view: Any, extra: Redactor | None = None) -> tuple[RunFacts, Redactor]:
    from repropack import __version__
    from repropack.redact import project_redactor

    info = view.info
    manifest_raw = _verified_toml(root, info.manifest, "repropack.toml")
    lock_raw = _verified_toml(root, info.lock, "repropack.lock")
    masks = info.masks if isinstance(info.masks, dict) else None
    found = project_redactor(None, _overrides(info.argv), digests=masks)
    redactor = Redactor([*found.values, *(extra.values if extra else ())], masks) if extra else found
    facts = RunFacts(
        run_id=info.run_id, status=info.status or "crashed", repropack_version=info.repropack_version or __version__,
        project=((manifest_raw or {}).get("project") or {}).get("name") or root.name,
        license=((manifest_raw or {}).get("project") or {}).get("license"), root=str(root),
        argv=redactor.argv(info.argv or []), host=info.host or "", user=info.user or "", profile=info.profile,
        started=info.started, ended=info.ended, manifest=_file(info.manifest, "repropack.toml"),
        lock=_file(info.lock, "repropack.lock"), params=_params(manifest_raw, info.argv, info.raw, redactor),
        environments=_environments(info.environments, lock_raw), base_image=_base(lock_raw),
        instances=_with_deps([_instance(view, rec, redactor) for rec in view.instances.values()],
                             [rec.deps is None for rec in view.instances.values()]),
        sums=_strip_all(view.checksums()), format=view.format, redacted=True,
    )
    _cached_outputs(root, facts.instances, facts.ended)
    _image_names(facts)
    return facts, redactor


def _image_names(facts: RunFacts) -> None:
    """run.json names an environment's image by ID; its instances by the name they ran."""
    from dataclasses import replace

    for name, env in list(facts.environments.items()):
        if env.image_name is None:
            image = next((i.image for i in facts.instances if i.environment == name and i.image), None)
            if image:
                facts.environments[name] = replace(env, image_name=image)


def _cached_outputs(root: Path, instances: list[InstanceFact], ended: float | None) -> None:
    """A cached instance's output sizes: SHA256SUMS holds digests only, and reading every earlier run's
    results for the sizes costs seconds at the end of a large no-op run. A file the kernel last changed
    (ctime, which no user call can set back) before this run ended still has the bytes SHA256SUMS
    names, so its size is that of those bytes; a file changed since gets no size."""
    import os
    import stat

    for inst in instances:
        if not inst.cached_from:
            continue
        for path in inst.outputs:
            try:
                st = os.stat(root / path, follow_symlinks=False)
            except OSError:
                continue
            if ended is not None and st.st_ctime <= ended and stat.S_ISREG(st.st_mode):
                inst.cached_outputs.append(FileFact(path, None, st.st_size))


def _file(record: dict[str, Any] | None, default: str) -> FileFact | None:
    if not record:
        return None
    return FileFact(record.get("path") or default, _strip(record.get("sha256")), record.get("size"))


def _strip(digest: str | None) -> str | None:
    if digest is None:
        return None
    return digest.split(":", 1)[1] if digest.startswith("sha256:") else digest


def _strip_all(sums: dict[str, str]) -> dict[str, str]:
    return {path: _strip(d) or "" for path, d in sums.items()}


def _verified_toml(root: Path, record: dict[str, Any] | None, default: str) -> dict[str, Any] | None:
    """The TOML file the record names, parsed, if its bytes still have the recorded sha256."""
    if not record or not record.get("sha256"):
        return None
    try:
        data = (root / (record.get("path") or default)).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != _strip(record["sha256"]):
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _overrides(argv: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    args = list(argv or [])
    for n, arg in enumerate(args):
        value = args[n + 1] if arg == "--param" and n + 1 < len(args) else (
            arg[len("--param="):] if arg.startswith("--param=") else None)
        if value is not None and "=" in value:
            key, _, val = value.partition("=")
            out[key] = val
    return out


def _params(manifest: dict[str, Any] | None, argv: list[str] | None, raw: dict[str, Any],
            redactor: Redactor) -> dict[str, Any]:
    """The parameter values the run used: run.json's own list when it has one, else the verified
    manifest's defaults with the run's --param overrides; secret-named ones masked."""
    recorded = raw.get("params") if isinstance(raw.get("params"), dict) else None
    values: dict[str, Any] = dict(recorded) if recorded is not None else {
        **((manifest or {}).get("params") or {}), **_overrides(argv)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if SECRET_NAME.search(str(name)):
            out[name] = MASK
        elif isinstance(value, str):
            out[name] = redactor(value)
        else:
            out[name] = value
    return out


def _environments(recorded: dict[str, Any], lock: dict[str, Any] | None) -> dict[str, EnvironmentFact]:
    locked = (lock or {}).get("environments") or {}
    out = {}
    for name, env in sorted((recorded or {}).items()):
        files = tuple(FileFact(path, _strip(digest)) for path, digest in sorted(((locked.get(name) or {}).get("files")
                                                                                 or {}).items()))
        out[name] = EnvironmentFact(name=name, lock_sha256=env.get("lock_sha256"), lock_files=files,
                                    image_id=env.get("image_id"), image_digest=env.get("image_digest"),
                                    image_name=env.get("image_name") or env.get("image"),
                                    sif_digest=env.get("sif_digest"), runtime=env.get("runtime"))
    return out


def _base(lock: dict[str, Any] | None) -> BaseImageFact | None:
    base = (lock or {}).get("base-image")
    if not isinstance(base, dict) or not base.get("reference"):
        return None
    return BaseImageFact(base.get("reference"), base.get("digest"), base.get("digest-kind"))


def _instance(view: Any, rec: Any, redact: Redactor) -> InstanceFact:
    inputs = [FileFact(i.get("path"), _strip(i.get("sha256")), i.get("size"))
              for i in (rec.key_parts or {}).get("inputs") or [] if isinstance(i, dict) and i.get("path")]
    if not inputs:
        inputs = [FileFact(p) for p in rec.inputs]
    return InstanceFact(
        id=rec.id, step=rec.step, command=redact(rec.command or _v1_command(view, rec.id, rec.outputs)), values=dict(rec.values or {}),
        environment=rec.environment, image=rec.image, profile=rec.profile, backend=rec.backend,
        runtime=(rec.raw or {}).get("runtime"), resources=dict(rec.resources or {}), inputs=inputs,
        outputs=list(rec.outputs or []), deps=list(rec.deps or []), key=rec.key, cached_from=rec.cached_from,
        attempts=[_attempt(a, redact) for a in view.attempts(rec.id)],
    )


def _with_deps(instances: list[InstanceFact], unrecorded: list[bool]) -> list[InstanceFact]:
    """Format 1 recorded no dependencies: an instance depends on the instances that made its inputs."""
    producer = {out: inst.id for inst in instances for out in inst.outputs}
    for inst, missing in zip(instances, unrecorded):
        if missing:
            inst.deps = sorted({producer[i.path] for i in inst.inputs if producer.get(i.path, inst.id) != inst.id})
    return instances


_STAGED = re.compile(r"(?:[^\s'\"]*/)?\.repropack/runs/[^/\s]+/[^/\s]+/attempt-\d+/out-(\d+)-[^\s'\";|&>]*")


def _v1_command(view: Any, iid: str, outputs: list[str]) -> str:
    """Format 1 kept no command as written: the script's command lines stand in for it, each staging
    path (``.repropack/runs/RUN/DIR/attempt-N/out-K-NAME``) put back as the declared output K."""
    script = view.script(iid) or ""
    lines = [ln for ln in script.splitlines() if ln.strip() and not ln.startswith("#") and ln.strip() != "set -euo pipefail"]

    def declared(match: re.Match[str]) -> str:
        k = int(match.group(1))
        return outputs[k] if k < len(outputs) else match.group(0)

    return _STAGED.sub(declared, "\n".join(lines))


def _attempt(a: Any, redact: Redactor) -> AttemptFact:
    return AttemptFact(
        attempt=a.attempt, start=a.start, end=a.end, wall=a.wall, cpu=a.cpu, peak_rss=a.peak_rss,
        peak_rss_source=a.peak_rss_source, cpu_source=a.cpu_source, exit_status=a.exit_status, signal=a.signal,
        failure=a.failure, message=redact(a.message or ""), backend=a.backend, job_id=a.job_id,
        outputs=[FileFact(o.path, _strip(o.sha256), o.size, o.type) for o in a.outputs],
    )
