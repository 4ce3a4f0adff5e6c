#!/usr/bin/env python3
"""Build benchmark: `repropack build` against a plain `docker build`, same pins, same wheelhouse, one run.

The project is examples/quickstart, locked on the local base image (`--base-override`). The
peer is a hand-written Containerfile on the same base that copies the same wheels (from
repropack's verified cache) and installs them with `pip install --no-index` (pip itself run
from its wheel, since the base has no pip), then copies the workflow's files: what a careful
user would write by hand. Both run with a warm Docker engine holding the base image.

Measured for both: a cold build (repropack: empty layer store, an image ID the engine has
never seen; docker: --no-cache), a warm rebuild with nothing changed, a rebuild after a
code-only change. Then repropack's SIF conversion alone (`--apptainer --no-docker`), and
whether two cold builds give one image ID (repropack) or two (docker build).

Goal (issue 5), printed as PASS/FAIL, never asserted: warm no-change rebuild under 2 s.

Usage::

    source scripts/_venv.sh
    python benchmarks/build.py              # all of it, about 3 minutes on 2 cores
    python benchmarks/build.py --no-sif     # without Apptainer
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Timed, fmt_s, goal, machine, run_timed  # noqa: E402

BASE = "local/debian:bookworm-python"
REPROPACK = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]
OURS = "repropack-bench/quickstart:repropack"
PEER = "repropack-bench/quickstart:docker-build"
PEER_CONTAINERFILE = """\
FROM {base}
COPY wheelhouse /wheelhouse
RUN python3 /wheelhouse/{pip}/pip install --no-index --no-cache-dir --break-system-packages \\
        --find-links /wheelhouse {pins} && rm -rf /wheelhouse
WORKDIR /work
COPY repropack.toml repropack.lock /work/
COPY data /work/data
COPY scripts /work/scripts
"""


def step(label: str, argv: list[str], cwd: Path, logs: Path, env: dict[str, str]) -> Timed:
    log = logs / (label.replace(" ", "-") + ".log")
    timed = run_timed(argv, cwd=cwd, log=log, timeout=1800, env=env)
    if not timed.ok:
        sys.exit(f"{label} failed (exit {timed.code}); see {log}:\n{log.read_text()[-2000:]}")
    return timed


def repropack_build(project: Path, logs: Path, env: dict[str, str], label: str, *extra: str) -> tuple[Timed, dict]:
    timed = step(label, [*REPROPACK, "build", "--json", "--tag", OURS, *extra, "-C", str(project)], project, logs, env)
    out = timed.log.read_text()
    return timed, json.loads(out[out.index("{"):])


def docker_build(context: Path, logs: Path, env: dict[str, str], label: str, *extra: str) -> tuple[Timed, str]:
    iidfile = context / "iid"
    argv = ["docker", "build", "-q", "--iidfile", str(iidfile), "-t", PEER, *extra, str(context)]
    timed = step(label, argv, context, logs, {**env, "DOCKER_BUILDKIT": "0"})
    return timed, iidfile.read_text().strip()


def prepare(work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    project = work / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", project,
                    ignore=lambda d, names: {"results", ".repropack", "__pycache__"} & set(names))
    step("lock", [*REPROPACK, "lock", "--base-override", BASE, "-C", str(project)], project, work, env)
    step("fetch", [*REPROPACK, "fetch", "-C", str(project)], project, work, env)
    return project, peer_context(project, work / "peer")


def peer_context(project: Path, context: Path) -> Path:
    """The hand-written peer: the same wheels from repropack's cache, pip run from its own wheel."""
    import ensurepip

    from repropack.build.stage import cached_wheel, locked_wheels
    from repropack.lock.freshness import load_lockset

    wheelhouse = context / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    lockset = load_lockset(project)
    pins = []
    for name in sorted(lockset.environments):
        for artifact in locked_wheels(lockset, name):
            shutil.copy(cached_wheel(artifact), wheelhouse / artifact.filename)
            pins.append(f"{artifact.name}=={artifact.version}")
    bundled = Path(ensurepip.__file__).parent / "_bundled"
    pip = next(bundled.glob("pip-*.whl"))
    shutil.copy(pip, wheelhouse / pip.name)
    for name in ("repropack.toml", "repropack.lock"):
        shutil.copy(project / name, context / name)
    for name in ("data", "scripts"):
        shutil.copytree(project / name, context / name)
    (context / "Containerfile").write_text(PEER_CONTAINERFILE.format(base=BASE, pip=pip.name, pins=" ".join(pins)))
    os.replace(context / "Containerfile", context / "Dockerfile")
    return context


def change_code(*roots: Path) -> None:
    for root in roots:
        script = root / "scripts" / "count.py"
        script.write_text(script.read_text() + "\n# benchmark: a code-only change\n")


def cleanup(epochs: list[int], peer_ids: list[str]) -> None:
    import subprocess

    ids = set(peer_ids)
    for epoch in epochs:
        out = subprocess.run(["docker", "images", "-q", "--no-trunc", "--filter",
                              f"label=io.repropack.source-date-epoch={epoch}"], capture_output=True, text=True)
        ids.update(out.stdout.split())
    subprocess.run(["docker", "rmi", "-f", *sorted(ids)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-sif", action="store_true", help="skip the Apptainer conversion")
    args = parser.parse_args()
    print(f"build benchmark on {machine()}")
    epochs = [random.randrange(10**8, 10**9) for _ in range(2)]  # image IDs no engine has seen
    peer_ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="repropack-bench-build-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "REPROPACK_CACHE": str(work / "cache"), "SOURCE_DATE_EPOCH": str(epochs[0])}
        project, context = prepare(work, env)
        try:
            rows, same = run_all(project, context, work, env, epochs, peer_ids, args.no_sif)
        finally:
            cleanup(epochs, peer_ids)
    print_results(rows, same)


def run_all(project, context, work, env, epochs, peer_ids, no_sif):
    rows: dict[str, tuple[float | None, float | None]] = {}
    cold, rec_cold = repropack_build(project, work, env, "repropack cold")
    warm, rec_warm = repropack_build(project, work, env, "repropack warm")
    peer_cold, id1 = docker_build(context, work, env, "docker cold", "--no-cache")
    peer_warm, _ = docker_build(context, work, env, "docker warm")
    rows["cold build"] = (cold.wall, peer_cold.wall)
    rows["warm no-change rebuild"] = (warm.wall, peer_warm.wall)
    change_code(project, context)
    code, rec_code = repropack_build(project, work, env, "repropack code-only")
    peer_code, _ = docker_build(context, work, env, "docker code-only")
    rows["code-only rebuild"] = (code.wall, peer_code.wall)
    peer_again, id2 = docker_build(context, work, env, "docker cold again", "--no-cache")
    peer_ids += [id1, id2]
    # a second cold repropack build, elsewhere, same epoch as the code-only one: same ID?
    twin = work / "twin"
    shutil.copytree(project, twin, ignore=lambda d, names: {".repropack"} & set(names))
    _, rec_twin = repropack_build(twin, work, {**env, "SOURCE_DATE_EPOCH": env["SOURCE_DATE_EPOCH"]}, "repropack twin")
    if not no_sif and shutil.which("apptainer"):
        sif, _ = repropack_build(project, work, env, "repropack sif", "--apptainer", "--no-docker")
        rows["SIF conversion (+ content digest)"] = (sif.wall, None)
    reused = [layer["reused"] for layer in rec_code["image"]["layers"]]
    same = {
        "repropack: two cold builds in two directories, one image ID": rec_code["image"]["id"] == rec_twin["image"]["id"],
        "docker build: two --no-cache builds, one image ID": id1 == id2,
        "repropack: code-only rebuild reused the environment layers": all(reused[:-1]) and not reused[-1],
        "repropack: warm rebuild reused every layer": all(l["reused"] for l in rec_warm["image"]["layers"]),
    }
    rows["_ids"] = (rec_cold["image"]["id"], rec_code["image"]["id"])  # type: ignore[assignment]
    return rows, same


def print_results(rows, same) -> None:
    rows.pop("_ids", None)
    print(f"\n{'':38} {'repropack':>10} {'docker build':>13} {'ratio':>8}")
    for label, (ours, peer) in rows.items():
        ratio = f"{peer / ours:7.2f}x" if ours and peer else "     n/a"
        print(f"{label:38} {fmt_s(ours):>10} {fmt_s(peer):>13} {ratio:>8}")
    print("  (ratio = docker build time / repropack time; above 1 means repropack is faster)")
    print()
    for label, value in same.items():
        print(f"  {label}: {'yes' if value else 'no'}")
    warm = rows["warm no-change rebuild"][0]
    print(goal("warm no-change rebuild under 2 s", warm < 2.0, f"{warm:.2f} s"))


if __name__ == "__main__":
    main()
