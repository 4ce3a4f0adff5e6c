"""``repropack rerun ARCHIVE``: unpack, restore the software from the archive alone, run, and judge
every output against the published digests.

Nothing comes from the network or the caller's caches: the packages are the archive's own
``cache/`` (``REPROPACK_CACHE`` points there and ``run --offline`` forbids downloads), the image is
``docker load``ed from the bundled docker-save archive and must come back with the recorded ID,
the SIF is the bundled one (its content digest checked when unsquashfs is there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from repropack.archive.check import trust_checker
from repropack.archive.compare import Outcome, compare
from repropack.archive.parts import CACHE_PREFIX, PROJECT
from repropack.archive.safety import Limits
from repropack.archive.unpack import unpack
from repropack.errors import ArchiveError, UsageError

RUN = "from repropack.cli import _entry; _entry()"


@dataclass
class Rerun:
    directory: Path
    project: Path
    profile: str
    runtime: str
    trust: object
    run_status: int
    image: dict = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def differences(self) -> int:
        return sum(o.verdict in ("different", "missing") for o in self.outcomes)

    def as_json(self) -> dict:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.verdict] = counts.get(outcome.verdict, 0) + 1
        return {"directory": str(self.directory), "profile": self.profile, "runtime": self.runtime,
                "run_exit_status": self.run_status, "image": self.image, "counts": counts,
                "signature": {"status": self.trust.status, "key": self.trust.key, "principal": self.trust.principal},
                "outputs": [o.as_json() for o in self.outcomes], "identical": self.differences == 0}


def rerun(archive: Path, directory: Path, *, profile: str | None = None, allowed_signers: Path | None = None,
          limits: Limits = Limits(), progress: Callable[[int], None] = lambda _n: None,
          run_stdout=None) -> Rerun:
    from repropack.manifest.loader import load_manifest

    directory = Path(directory).resolve()
    found: list = []
    created = not directory.exists()
    contents = unpack(archive, directory, limits=limits, trust=trust_checker(Path(archive), allowed_signers, found),
                      progress=progress)
    index = contents.index
    project = directory / PROJECT
    try:
        manifest = load_manifest(project)
        if profile is not None and profile not in manifest.profiles:
            raise UsageError(f"--profile {profile}: not a profile of the archived manifest "
                             f"(profiles: {', '.join(sorted(manifest.profiles)) or 'none'})")
        chosen = manifest.profile(profile)
        image = restore_image(directory, project, index, chosen.runtime)
    except BaseException:  # nothing ran yet: leave nothing of the archive behind
        _remove_unpacked(directory, created)
        raise
    status = run_workflow(project, directory / CACHE_PREFIX, profile, run_stdout)
    expected = _published(directory)
    outcomes = compare(project, expected, manifest.compare, directory / "published" / "outputs",
                       kept=index.get("compare") or {})
    return Rerun(directory, project, chosen.name, chosen.runtime, found[0], status, image, outcomes)


def _remove_unpacked(directory: Path, created: bool) -> None:
    import shutil

    if created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for entry in directory.iterdir():  # it was empty before unpack
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _published(directory: Path) -> dict[str, str]:
    from repropack.run.checksums import parse_checksums

    path = directory / "published" / "SHA256SUMS"
    return parse_checksums(path.read_text(encoding="utf-8"), source=str(path), root=directory / PROJECT)


def run_workflow(project: Path, cache: Path, profile: str | None, stdout=None) -> int:
    """``repropack run --offline`` of the unpacked project, with the archive's packages as the only cache."""
    cache.mkdir(exist_ok=True)
    argv = [sys.executable, "-c", RUN, "run", "--offline", "--no-resume", "-C", str(project)]
    if profile is not None:
        argv += ["--profile", profile]
    # the archive's packages are the only cache; docker step containers get no network
    env = {**os.environ, "REPROPACK_CACHE": str(cache), "REPROPACK_DOCKER_NETWORK": "none"}
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout).returncode


def restore_image(directory: Path, project: Path, index: dict, runtime: str) -> dict:
    """Load the bundled image (docker) or place the bundled SIF (apptainer) and record it as built."""
    if runtime == "host":
        return {}
    image = index.get("image")
    if not image:
        raise ArchiveError(f"the {runtime} runtime needs an image, and this archive has none "
                           "(it was packed without --with-images)", archive=directory)
    record: dict = {"image": {"id": image["id"], "reference": image.get("reference")}, "sif": None}
    if runtime == "docker":
        if "docker" not in image:
            raise ArchiveError("the archive holds no docker-save archive of the image", archive=directory)
        loaded = load_docker(directory / image["docker"], image["id"])
        record["image"]["reference"] = loaded
    else:
        sif = image.get("sif")
        if not sif:
            raise ArchiveError("the archive holds no SIF of the image", archive=directory)
        path = directory / sif["member"]
        check_sif(path, sif.get("content_digest"))
        record["sif"] = {"path": str(path), "image_id": image["id"], "content_digest": sif.get("content_digest")}
    from repropack.build.record import write_record

    write_record(project, record)
    return {"id": image["id"], "runtime": runtime}


def load_docker(archive: Path, expected_id: str) -> str:
    """``docker load`` the archive; the engine's image ID must be the recorded one. Returns a reference."""
    from repropack.docker_api import connect

    client = connect(60)
    with open(archive, "rb") as handle:
        images = client.images.load(handle)
    ids = [img.id for img in images]
    if expected_id not in ids:
        raise ArchiveError(f"the bundled image loaded as {', '.join(ids) or 'nothing'}, not the recorded {expected_id}",
                           archive=archive)
    return expected_id


def check_sif(path: Path, expected: str | None) -> None:
    import shutil

    if not expected or shutil.which("unsquashfs") is None:
        return
    from repropack.build.apptainer import content_digest

    actual = content_digest(path)
    if actual != expected:
        raise ArchiveError(f"the bundled SIF's content digest is {actual}, not the recorded {expected}", archive=path)


def as_table(result: Rerun) -> list[str]:
    width = max([len(o.path) for o in result.outcomes] + [6])
    lines = [f"{'output':<{width}}  verdict"]
    for outcome in result.outcomes:
        note = f"  (rule {outcome.rule})" if outcome.rule else ""
        lines.append(f"{outcome.path:<{width}}  {outcome.verdict}{note}")
        if outcome.verdict == "different" and outcome.diff:
            lines += ["    " + line for line in outcome.diff.rstrip("\n").splitlines()]
        elif outcome.verdict == "different":
            lines.append(f"    expected sha256 {outcome.expected}, got {outcome.actual}")
    return lines


