"""scripts/engines.d: adapting Debian unstable's Apptainer to an older glibc, on a scratch copy of the .deb.

The pitfall it guards: clearing the symbol versions alone (patchelf --clear-symbol-version) leaves the
GLIBC_2.38 entry in .gnu.version_r, and ld.so still refuses to start the binary.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "scripts" / "engines.d" / "elf_versions.py"
CACHE = Path("/var/cache/repropack-engines")
MIRROR = "http://deb.debian.org/debian/pool/main/a/apptainer"


def _pin() -> tuple[str, str]:
    text = (REPO / "scripts" / "engines.sh").read_text()
    version = re.search(r'^APPTAINER_PIN_VERSION="([^"]+)"', text, re.M)[1]
    sha256 = re.search(r'^APPTAINER_PIN_SHA256="([0-9a-f]{64})"', text, re.M)[1]
    return version, sha256


@pytest.fixture(scope="module")
def apptainer_deb(tmp_path_factory) -> Path:
    """The pinned .deb: engines.sh's cached copy, else downloaded; its sha256 checked either way."""
    version, sha256 = _pin()
    name = f"apptainer_{version}_amd64.deb"
    deb = CACHE / name
    if not deb.exists():
        deb = tmp_path_factory.mktemp("deb") / name
        with urllib.request.urlopen(f"{MIRROR}/{name}", timeout=300) as response, deb.open("wb") as out:
            shutil.copyfileobj(response, out)
    assert hashlib.sha256(deb.read_bytes()).hexdigest() == sha256
    return deb


def _elf_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"]


def _needs(*files: Path) -> set[tuple[str, str]]:
    out = subprocess.run([sys.executable, str(TOOL), "needs", *map(str, files)], capture_output=True, text=True, check=True)
    return {tuple(line.split()[1:]) for line in out.stdout.splitlines()}


@pytest.mark.network
@pytest.mark.apptainer
def test_shim_lets_apptainer_start_on_this_glibc_without_warnings(apptainer_deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", str(apptainer_deb), str(root)], check=True)
    binaries = _elf_files(root)
    assert root / "usr/bin/apptainer" in binaries
    needs = _needs(*binaries)
    glibc = tuple(int(p) for p in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split("."))
    if glibc >= (2, 38):
        assert needs == set()  # nothing newer than this glibc: engines.sh installs it unchanged
        return
    assert ("__isoc23_strtol", "GLIBC_2.38") in needs

    # A shim lacking a needed symbol is refused, naming it, and the binary is left untouched.
    apptainer = root / "usr/bin/apptainer"
    empty = tmp_path / "libempty.so"
    (tmp_path / "empty.c").write_text("int repropack_nothing(void) { return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(empty), str(tmp_path / "empty.c")], check=True)
    before = apptainer.read_bytes()
    refused = subprocess.run([sys.executable, str(TOOL), "patch", str(empty), str(apptainer)], capture_output=True, text=True)
    assert refused.returncode == 1 and "__isoc23_strtol" in refused.stderr
    assert apptainer.read_bytes() == before

    shim = tmp_path / "libshim.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(REPO / "scripts/engines.d/glibc-shim.c")], check=True)
    for binary in binaries:
        if _needs(binary):
            subprocess.run(["patchelf", "--add-needed", shim.name, str(binary)], check=True)
            subprocess.run([sys.executable, str(TOOL), "patch", str(shim), str(binary)], check=True)
    assert _needs(*binaries) == set()
    readelf = subprocess.run(["readelf", "-V", str(root / "usr/bin/apptainer")], capture_output=True, text=True, check=True)
    assert "GLIBC_2.38" not in readelf.stdout

    env = {**os.environ, "LD_LIBRARY_PATH": str(tmp_path)}
    run = subprocess.run([str(root / "usr/bin/apptainer"), "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("apptainer version ")
    assert run.stderr == ""  # no "weak version ... not found" from ld.so on every start
    preload = root / "usr/lib/x86_64-linux-gnu/apptainer/lib/offsetpreload.so"
    run = subprocess.run(["true"], capture_output=True, text=True, env={**env, "LD_PRELOAD": str(preload)}, timeout=60)
    assert (run.returncode, run.stderr) == (0, "")


def test_patch_leaves_a_binary_needing_nothing_newer_unchanged(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed (scripts/engines.sh installs it where the shim is needed)")
    (tmp_path / "empty.c").write_text("int repropack_nothing(void) { return 0; }\n")
    shim = tmp_path / "libempty.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(shim), str(tmp_path / "empty.c")], check=True)
    target = tmp_path / "true"
    shutil.copy2(shutil.which("true"), target)  # built for this very glibc
    before = target.read_bytes()
    assert _needs(target) == set()
    assert subprocess.run([sys.executable, str(TOOL), "patch", str(shim), str(target)]).returncode == 0
    assert target.read_bytes() == before
