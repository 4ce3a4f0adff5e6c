"""Apptainer SIF from the docker-save archive, and a digest of its filesystem content.

The apptainer CLI is called directly rather than through spython: spython only
runs an executable named ``singularity`` and calls ``sys.exit`` on a failed
build, which a library must not do (spython reads SIF labels for the SLURM backend's
checks, guarded: ``backends/slurm/sif.py``). Apptainer 1.4 writes a fresh UUID and
timestamps into every SIF, so two builds never share a sha256; what must match
is the content, hashed here over the unpacked squashfs partition: every path
with its type, permission bits, owner, link target and file bytes, but no
mtimes (squashfs keeps the build time on what Apptainer adds), and with the
build date left out of Apptainer's ``labels.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from repropack.build.layers import CHUNK
from repropack.errors import BuildError, EngineUnavailable

CONTENT_SCHEME = "repropack-sif-content-v1"
LABELS = ".singularity.d/labels.json"
# The only label Apptainer fills from the clock; the others (and every other file) are content.
VOLATILE_LABELS = frozenset({"org.label-schema.build-date"})


def find_apptainer() -> str:
    for name in ("apptainer", "singularity"):
        path = shutil.which(name)
        if path:
            return path
    raise EngineUnavailable(
        "apptainer", "neither `apptainer` nor `singularity` is on PATH", hint="install Apptainer or leave out --apptainer"
    )


def _run(argv: list[str], what: str, *, timeout: int = 3600, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    except FileNotFoundError as exc:
        raise EngineUnavailable("apptainer", f"{argv[0]} cannot be executed") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what} did not finish within {timeout} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def build_sif(archive: Path, out: Path) -> None:
    """``apptainer build`` the SIF from a docker-save archive, atomically (temp name, then rename)."""
    archive = Path(archive).resolve()
    # Relative to cwd, because Apptainer writes the source path into the SIF's labels and
    # definition file: the archive's name (the image ID) is the same wherever the project is.
    _build(f"docker-archive:{archive.name}", archive.parent, out)


def build_from_definition(definition: Path, out: Path) -> None:
    """``apptainer build`` from a rendered definition file (the --containerfile path)."""
    definition = Path(definition).resolve()
    _build(definition.name, definition.parent, out)


def _build(source: str, cwd: Path, out: Path) -> None:
    binary = find_apptainer()
    out = Path(out).resolve()
    tmp = out.with_name(out.name + ".part")
    env_tmp = tempfile.mkdtemp(prefix="apptainer-", dir=out.parent)
    try:
        _run_with_tmpdir([binary, "build", "--force", str(tmp), source], env_tmp, f"apptainer build of {out.name}", cwd=cwd)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(env_tmp, ignore_errors=True)


def _run_with_tmpdir(argv: list[str], tmpdir: str, what: str, *, cwd: Path) -> None:
    # Apptainer unpacks layers under its TMPDIR; keep that next to the output, not in a small /tmp.
    old = os.environ.get("APPTAINER_TMPDIR")
    os.environ["APPTAINER_TMPDIR"] = tmpdir
    try:
        _run(argv, what, cwd=cwd)
    finally:
        if old is None:
            os.environ.pop("APPTAINER_TMPDIR", None)
        else:
            os.environ["APPTAINER_TMPDIR"] = old


def squashfs_offset(sif: Path) -> int:
    """Byte offset of the SIF's root filesystem partition (from ``apptainer sif list``)."""
    listing = _run([find_apptainer(), "sif", "list", str(sif)], f"apptainer sif list {sif.name}")
    for line in listing.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 5 and cells[4].startswith("FS") and "Squashfs" in cells[4]:
            return int(cells[3].split("-")[0])
    raise BuildError(f"{sif}: no squashfs root filesystem partition found")


def content_digest(sif: Path, *, workdir: Path | None = None) -> str:
    """``sha256:`` over the SIF's unpacked filesystem (see the module docstring)."""
    unsquashfs = shutil.which("unsquashfs")
    if unsquashfs is None:
        raise EngineUnavailable("unsquashfs", "not on PATH", hint="install squashfs-tools")
    offset = squashfs_offset(sif)
    with tempfile.TemporaryDirectory(prefix="sif-content-", dir=workdir or sif.parent) as tmp:
        root = Path(tmp) / "root"
        _run(
            [unsquashfs, "-o", str(offset), "-d", str(root), "-n", "-no-xattrs", "-f", str(sif)],
            f"unsquashfs of {sif.name}",
        )
        return tree_digest(root)


def tree_digest(root: Path) -> str:
    """Digest of a directory tree's paths, types, modes, owners, link targets and contents."""
    digest = hashlib.sha256(CONTENT_SCHEME.encode() + b"\n")
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = Path(directory).relative_to(root)
        for name in sorted(dirnames + filenames):
            rel = (rel_dir / name).as_posix()
            digest.update(_describe(Path(directory) / name, rel))
    return "sha256:" + digest.hexdigest()


def _describe(path: Path, rel: str) -> bytes:
    st = path.lstat()
    head = f"{rel}\0{stat.S_IFMT(st.st_mode):o}\0{stat.S_IMODE(st.st_mode):o}\0{st.st_uid}:{st.st_gid}\0"
    if stat.S_ISLNK(st.st_mode):
        tail = os.readlink(path)
    elif rel == LABELS:
        labels = json.loads(path.read_text())
        stable = {k: v for k, v in labels.items() if k not in VOLATILE_LABELS}
        tail = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    elif stat.S_ISREG(st.st_mode):
        tail = _file_sha256(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        tail = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
    else:
        tail = ""
    return (head + tail + "\n").encode("utf-8", "surrogateescape")


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()
