#!/usr/bin/env python3
"""Build benchmark: `repropack build` against a plain `docker build`, same pins, same wheelhouse, one run.

The project is examples/quickstart, locked on the local base image (`--base-override`). The
peer is a hand-written Containerfile on the same base that copies the same wheels (from
repropack's verified cache) and installs them with `pip install --no-index` (pip itself run
from its wheel, since the base has no pip), then copies the workflow's files: what a careful
user would write by hand. Both run with a warm Docker engine holding the base image.

Measured for both: a cold build (repropack: empty layer store, an image ID the engine has
never seen; docker: --no-cache), a warm rebuild with nothing changed, a rebuild after a
code-only change. Then repropack's SIF conversion alone (`--apptainer --no-docker`).

Reproducibility (issue 5's "Done when"): a second cold build of the same lock and files in
another directory, with other mtimes and another umask, after the first build's image was
removed from the engine, with `--docker --apptainer --push`. The first build's push and SIF
are the timed conversion above, so no third conversion is made. Both push to a repository
unique to this run on the local registry; printed: one image ID, one pushed manifest digest
(also fetched back from the registry by digest), one SIF content digest, and the SIF sha256s
(expected to differ: Apptainer writes a UUID and times into every SIF).

Goals, printed as PASS/FAIL, never asserted: those three identities, and a warm no-change
rebuild under 2 s. Exit status 0 when everything ran, whatever the goals; non-zero when a
build crashed. Everything the run created (images, tags, registry manifest, SIFs, temp dirs)
is removed at the end.

Usage::

    source scripts/_venv.sh
    python benchmarks/build.py              # all of it, about 75 s on 2 cores
    python benchmarks/build.py --no-sif     # without Apptainer
    python benchmarks/build.py --no-push    # without the registry
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Timed, fmt_s, goal, machine, run_timed  # noqa: E402

BASE = "local/debian:bookworm-python"
REGISTRY = "127.0.0.1:5000"
REPROPACK = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]
OURS = "repropack-bench/quickstart:repropack"
PEER = "repropack-bench/quickstart:docker-build"
TWIN_UMASK, TWIN_MTIME = 0o077, 1_750_000_000  # the first build keeps the checkout's mtimes and this umask
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


class Created:
    """What this run put into the shared engines, for the clean-up."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.peer_ids: set[str] = set()
        self.pushed: set[str] = set()  # host/repository@digest


def step(label: str, argv: list[str], cwd: Path, logs: Path, env: dict[str, str]) -> Timed:
    log = logs / (label.replace(" ", "-") + ".log")
    timed = run_timed(argv, cwd=cwd, log=log, timeout=1800, env=env)
    if not timed.ok:
        # the log goes with the temp dir: its end is shown here
        sys.exit(f"{label} failed (exit {timed.code}); the end of its output:\n{log.read_text()[-2000:]}")
    return timed


def repropack_build(project: Path, logs: Path, env: dict[str, str], label: str, *extra: str) -> tuple[Timed, dict]:
    timed = step(label, [*REPROPACK, "build", "--json", "--tag", OURS, *extra, "-C", str(project)], project, logs, env)
    out = timed.log.read_text()
    return timed, json.loads(out[out.index("{"):])


def docker_build(context: Path, logs: Path, env: dict[str, str], created: Created, label: str,
                 *extra: str) -> tuple[Timed, str]:
    iidfile = context / "iid"
    argv = ["docker", "build", "-q", "--iidfile", str(iidfile), "-t", PEER, *extra, str(context)]
    timed = step(label, argv, context, logs, {**env, "DOCKER_BUILDKIT": "0"})
    image_id = iidfile.read_text().strip()
    created.peer_ids.add(image_id)  # every one, or the code-only image outlives the run untagged
    return timed, image_id


def prepare(work: Path, env: dict[str, str]) -> tuple[Path, Path, Path]:
    """The locked, fetched project; its twin (same lock and files, other mtimes); the peer's context."""
    project = work / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", project,
                    ignore=lambda d, names: {"results", ".repropack", "__pycache__"} & set(names))
    step("lock", [*REPROPACK, "lock", "--base-override", BASE, "-C", str(project)], project, work, env)
    step("fetch", [*REPROPACK, "fetch", "-C", str(project)], project, work, env)
    twin = shutil.copytree(project, work / "elsewhere" / "quickstart",
                           ignore=lambda d, names: {".repropack"} & set(names))
    for directory, dirs, files in os.walk(twin):
        for name in [*dirs, *files, "."]:
            os.utime(os.path.join(directory, name), (TWIN_MTIME, TWIN_MTIME), follow_symlinks=False)
    return project, twin, peer_context(project, work / "peer")


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
    (context / "Dockerfile").write_text(PEER_CONTAINERFILE.format(base=BASE, pip=pip.name, pins=" ".join(pins)))
    return context


def change_code(*roots: Path) -> None:
    for root in roots:
        script = root / "scripts" / "count.py"
        script.write_text(script.read_text() + "\n# benchmark: a code-only change\n")


def registry_session():
    import requests

    session = requests.Session()
    session.trust_env = False  # a proxy from the environment would not reach the loopback registry
    return session


def registry_digest(reference: str) -> str | None:
    """The digest the registry serves for ``host/repository@digest`` (None when it has no such manifest)."""
    from repropack.build.image import MEDIA_MANIFEST

    host, _, rest = reference.partition("/")
    repository, _, digest = rest.partition("@")
    response = registry_session().head(f"http://{host}/v2/{repository}/manifests/{digest}",
                                       headers={"Accept": MEDIA_MANIFEST}, timeout=30)
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


def cleanup(created: Created) -> None:
    out = subprocess.run(["docker", "images", "-q", "--no-trunc", "--filter",
                          f"label=io.repropack.source-date-epoch={created.epoch}"], capture_output=True, text=True)
    ids = sorted(created.peer_ids | set(out.stdout.split()))
    if ids:  # by ID: -f also drops the tags this run put on them, and no one else's image carries our epoch
        subprocess.run(["docker", "rmi", "-f", *ids], capture_output=True)
    for reference in sorted(created.pushed):
        try:
            unpush(reference)
        except OSError as exc:  # requests' errors are OSErrors
            print(f"  (could not remove {reference} from the registry: {exc})", file=sys.stderr)


def unpush(reference: str) -> None:
    """Delete the manifest (and with it the tag), then unlink its blobs from this repository only.

    The registry keeps the bytes until its own garbage collection, which is not ours to run.
    """
    from repropack.build.image import MEDIA_MANIFEST

    host, _, rest = reference.partition("/")
    repository, _, digest = rest.partition("@")
    base, session = f"http://{host}/v2/{repository}", registry_session()
    response = session.get(f"{base}/manifests/{digest}", headers={"Accept": MEDIA_MANIFEST}, timeout=30)
    if response.status_code != 200:
        return  # already gone (both builds pushed the same digest)
    manifest = response.json()
    session.delete(f"{base}/manifests/{digest}", timeout=30)
    for blob in [manifest["config"], *manifest["layers"]]:
        session.delete(f"{base}/blobs/{blob['digest']}", timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-sif", action="store_true", help="skip the Apptainer conversion")
    parser.add_argument("--no-push", action="store_true", help="skip pushing to the registry")
    parser.add_argument("--registry", default=REGISTRY, help=f"registry to push to (default {REGISTRY})")
    args = parser.parse_args()
    print(f"build benchmark on {machine()}")
    sif = not args.no_sif and shutil.which("apptainer") is not None
    push = None if args.no_push else f"{args.registry}/bench-{os.getpid()}"
    created = Created(random.randrange(10**8, 10**9))  # an image ID no engine has seen
    with tempfile.TemporaryDirectory(prefix="repropack-bench-build-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "REPROPACK_CACHE": str(work / "cache"), "SOURCE_DATE_EPOCH": str(created.epoch),
               "APPTAINER_CACHEDIR": str(work / "apptainer-cache")}  # not the user's cache: removed with tmp
        try:
            project, twin, context = prepare(work, env)
            results = timed_builds(project, context, work, env, created, push, sif)
            results["twin"] = twin_build(twin, results["first"], work, env, created, push, sif)
        finally:
            cleanup(created)
    print_results(results, sif=sif, push=push)


def timed_builds(project, context, work, env, created: Created, push: str | None, sif: bool) -> dict:
    """The side-by-side table, plus the first cold build's image, push and SIF for the twin comparison."""
    rows: dict[str, tuple[float | None, float | None]] = {}
    cold, rec_cold = repropack_build(project, work, env, "repropack cold")
    first = {"image": rec_cold["image"], "pushed": None, "sif": None, "umask": current_umask()}
    if push:  # the engine has the cold build's image already: this is the push alone
        _, rec_push = repropack_build(project, work, env, "repropack push", "--push", push)
        first["pushed"] = rec_push["pushed"]
        created.pushed.add(rec_push["pushed"]["reference"])
    if sif:  # timed here, and also the first build's SIF for the comparison: one conversion, not two
        sif_run, rec_sif = repropack_build(project, work, env, "repropack sif", "--apptainer", "--no-docker")
        first["sif"] = rec_sif["sif"]
    warm, rec_warm = repropack_build(project, work, env, "repropack warm")
    peer_cold, id1 = docker_build(context, work, env, created, "docker cold", "--no-cache")
    peer_warm, _ = docker_build(context, work, env, created, "docker warm")
    rows["cold build"] = (cold.wall, peer_cold.wall)
    rows["warm no-change rebuild"] = (warm.wall, peer_warm.wall)
    change_code(project, context)
    code, rec_code = repropack_build(project, work, env, "repropack code-only")
    peer_code, _ = docker_build(context, work, env, created, "docker code-only")
    rows["code-only rebuild"] = (code.wall, peer_code.wall)
    _, id2 = docker_build(context, work, env, created, "docker cold again", "--no-cache")
    if sif:
        rows["SIF conversion (+ content digest)"] = (sif_run.wall, None)
    reused = [layer["reused"] for layer in rec_code["image"]["layers"]]
    return {"rows": rows, "first": first, "docker_same_id": id1 == id2,
            "code_reused_env": all(reused[:-1]) and not reused[-1],
            "warm_reused_all": all(layer["reused"] for layer in rec_warm["image"]["layers"])}


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def twin_build(twin: Path, first: dict, work, env, created: Created, push: str | None, sif: bool) -> dict:
    """The second cold build: another directory, other mtimes and umask, the first image gone from the engine."""
    subprocess.run(["docker", "rmi", "-f", first["image"]["id"]], capture_output=True, check=True)
    extra = ["--docker", *(["--apptainer"] if sif else []), *(["--push", push] if push else [])]
    old = os.umask(TWIN_UMASK)  # inherited by the build process
    try:
        _, record = repropack_build(twin, work, env, "repropack twin", *extra)
    finally:
        os.umask(old)
    record["umask"] = TWIN_UMASK
    if record.get("pushed"):
        created.pushed.add(record["pushed"]["reference"])
        record["registry_digest"] = registry_digest(record["pushed"]["reference"])
    return record


def print_results(results: dict, *, sif: bool, push: str | None) -> None:
    print(f"\n{'':38} {'repropack':>10} {'docker build':>13} {'ratio':>8}")
    for label, (ours, peer) in results["rows"].items():
        ratio = f"{peer / ours:7.2f}x" if ours and peer else "     n/a"
        print(f"{label:38} {fmt_s(ours):>10} {fmt_s(peer):>13} {ratio:>8}")
    print("  (ratio = docker build time / repropack time; above 1 means repropack is faster)")
    print()
    print(f"  repropack: code-only rebuild reused the environment layers: {yes_no(results['code_reused_env'])}")
    print(f"  repropack: warm rebuild reused every layer: {yes_no(results['warm_reused_all'])}")
    print(f"  docker build: two --no-cache builds, one image ID: {yes_no(results['docker_same_id'])}")
    first, twin = results["first"], results["twin"]
    print(f"\n  repropack: two cold builds in two directories (other mtimes; umask {first['umask']:03o} and "
          f"{twin['umask']:03o}; the second loaded into an engine without the first's image: "
          f"{yes_no(twin['docker']['loaded'])})")
    same_id = first["image"]["id"] == twin["image"]["id"] == twin["docker"]["id"]
    print(f"    one image ID: {yes_no(same_id)} ({_pair(first['image']['id'], twin['image']['id'])})")
    push_ok, push_detail = pushed_lines(first, twin) if push else (None, "not pushed (--no-push)")
    sif_ok, sif_detail = sif_lines(first, twin) if sif else (None, "no SIF (--no-sif, or apptainer not on PATH)")
    print()
    print(goal("one image ID", same_id, _pair(first["image"]["id"], twin["image"]["id"])))
    print(goal("one pushed digest", push_ok, push_detail))
    print(goal("one SIF content digest", sif_ok, sif_detail))
    warm = results["rows"]["warm no-change rebuild"][0]
    print(goal("warm no-change rebuild under 2 s", warm < 2.0, f"{warm:.2f} s"))


def pushed_lines(first: dict, twin: dict) -> tuple[bool, str]:
    a, b = first["pushed"]["digest"], twin["pushed"]["digest"]
    served = twin.get("registry_digest")
    same = a == b == served
    print(f"    one pushed manifest digest: {yes_no(same)} ({_pair(a, b)}; the registry serves "
          f"{twin['pushed']['repository']}@{served or 'nothing'})")
    return same, _pair(a, b)


def sif_lines(first: dict, twin: dict) -> tuple[bool, str]:
    a, b = first["sif"], twin["sif"]
    same = a["content_digest"] == b["content_digest"]
    print(f"    one SIF content digest: {yes_no(same)} ({_pair(a['content_digest'], b['content_digest'])})")
    print(f"    SIF sha256 differ (expected, Apptainer writes a UUID and time): "
          f"{yes_no(a['sha256'] != b['sha256'])} ({a['sha256']}, {b['sha256']})")
    return same, _pair(a["content_digest"], b["content_digest"])


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _pair(a: str, b: str) -> str:
    return a if a == b else f"{a} vs {b}"


if __name__ == "__main__":
    main()
