"""Hand-made runs for the provenance tests: a run with a failure, a cached one, an interrupted one."""

from __future__ import annotations

import hashlib
from pathlib import Path

from repropack.provenance.model import (AttemptFact, BaseImageFact, EnvironmentFact, FileFact, InstanceFact,
                                        RunFacts)

T0 = 1_790_000_000.0


def _write(root: Path, path: str, text: str) -> FileFact:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    data = text.encode()
    return FileFact(path, hashlib.sha256(data).hexdigest(), len(data))


def sample_run(root: Path, *, kind: str = "failed") -> RunFacts:
    """A scatter over two samples and a gather, in the project folder ``root`` (files written there).

    kind: ``failed`` (beta fails, summary not run), ``ok``, ``cached`` (everything from run R0),
    ``interrupted`` (beta started and never ended)."""
    manifest = _write(root, "repropack.toml", "[project]\nname = 'demo'\n")
    lock = _write(root, "repropack.lock", "version = 1\n")
    lockfile = _write(root, "locks/default/pylock.linux-64.toml", "lock-version = '1.0'\n")
    inputs = {s: _write(root, f"data/{s}.txt", f"{s} words here\n") for s in ("alpha", "beta")}
    outs = {s: _write(root, f"results/{s}.count", f"{s} 3\n") for s in ("alpha", "beta")}
    summary = _write(root, "results/summary.tsv", "alpha\t3\nbeta\t3\n")
    instances = []
    for n, sample in enumerate(("alpha", "beta")):
        iid = f"count[sample={sample}]"
        inst = InstanceFact(id=iid, step="count", command=f"python scripts/count.py --min-length 3 data/{sample}.txt "
                            f"results/{sample}.count --token s3cr3t-value-123", values={"sample": sample},
                            environment="default", profile="local", backend="local", runtime="host",
                            resources={"cpus": 1}, inputs=[inputs[sample]], outputs=[outs[sample].path])
        start = T0 + n
        ok = AttemptFact(1, start, start + 0.5, 0.5, 0.4, 12_000_000, "cgroup-v1", "cgroup-v1", 0, backend="local",
                         outputs=[outs[sample]])
        if kind == "cached":
            inst.cached_from = "R0"
        elif kind == "failed" and sample == "beta":
            inst.attempts = [AttemptFact(1, start, start + 0.2, 0.2, 0.1, 9_000_000, "cgroup-v1", "cgroup-v1", 3,
                                         failure="exit", message="exit status 3", backend="local")]
        elif kind == "interrupted" and sample == "beta":
            inst.attempts = [AttemptFact(1, start, backend="local")]
        else:
            inst.attempts = [ok]
        instances.append(inst)
    gather = InstanceFact(id="summary", step="summary", command="python scripts/summary.py results/alpha.count "
                          "results/beta.count > results/summary.tsv", environment="default", runtime="host",
                          backend="local", inputs=[outs["alpha"], outs["beta"]], outputs=[summary.path],
                          deps=[i.id for i in instances])
    if kind == "cached":
        gather.cached_from = "R0"
    elif kind == "ok":
        gather.attempts = [AttemptFact(1, T0 + 3, T0 + 3.2, 0.2, 0.1, 8_000_000, "cgroup-v1", "cgroup-v1", 0,
                                       backend="local", outputs=[summary])]
    instances.append(gather)
    status = {"failed": "failed", "ok": "ok", "cached": "ok", "interrupted": "interrupted"}[kind]
    made = [o for i in instances for o in (i.produced if not i.cached_from else [])]
    sums = {o.path: o.sha256 for o in made}
    if kind == "cached":
        sums = {o.path: o.sha256 for o in (*outs.values(), summary)}
    return RunFacts(
        run_id="R1", status=status, repropack_version="0.1.0", project="demo", root=str(root),
        argv=["repropack", "run", "--param", "api_token=abcdef123456"], host="node1", user="ada", profile="local",
        started=T0, ended=T0 + 5, manifest=manifest, lock=lock, params={"min_length": 3, "api_token": "***"},
        environments={"default": EnvironmentFact("default", "sha256:" + "ab" * 32, (lockfile,),
                                                 image_id="sha256:" + "cd" * 32, image_name="repropack/demo:abc",
                                                 image_digest="sha256:" + "ef" * 32, sif_digest="sha256:" + "12" * 32,
                                                 runtime="host")},
        base_image=BaseImageFact("python:3.11-slim", "sha256:" + "34" * 32, "manifest"),
        instances=instances, sums=sums)
