"""A venv for the image, staged on the host from verified wheels.

Why not ``uv pip install --target`` or ``pip``: both record the host in what
they install (the host interpreter in script shebangs, the cache path in
``direct_url.json``, a timestamped ``uv_cache.json``), so two machines would
stage different bytes. Installing a wheel is a small, specified operation
(unpack, spread ``.data``, write entry-point scripts, RECORD), done here with
only the final in-image paths written into files.

The venv's ``bin/python`` is a symlink to the base image's own interpreter and
``pyvenv.cfg`` points ``home`` at its directory, so ``/opt/envs/<name>/bin/python``
runs the base's Python with the environment's site-packages.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import posixpath
import zipfile
from pathlib import Path, PurePosixPath

from repropack.errors import BuildError

INSTALLER = "repropack"
_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {head}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""


def make_venv(stage: Path, interpreter: str, python_version: str) -> Path:
    """Create the venv skeleton in ``stage``; returns its site-packages directory."""
    major_minor = ".".join(python_version.split(".")[:2])
    (stage / "bin").mkdir(parents=True, exist_ok=True)
    site = stage / "lib" / f"python{major_minor}" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (stage / "pyvenv.cfg").write_text(
        f"home = {posixpath.dirname(interpreter)}\ninclude-system-site-packages = false\nversion = {major_minor}\n"
    )
    (stage / "pyvenv.cfg").chmod(0o644)
    (stage / "bin" / "python").symlink_to(interpreter)
    (stage / "bin" / "python3").symlink_to("python")
    (stage / "bin" / f"python{major_minor}").symlink_to("python")
    return site


def install_wheel(wheel: Path, stage: Path, prefix: str, python_version: str) -> None:
    """Install one wheel into the staged venv whose final location is ``prefix``."""
    major_minor = ".".join(python_version.split(".")[:2])
    site_rel = f"lib/python{major_minor}/site-packages"
    python = f"{prefix}/bin/python"
    records: dict[str, tuple[str, int]] = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            dist_info = _dist_info_dir(zf, wheel)
            data_dir = dist_info[: -len(".dist-info")] + ".data"
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                rel = _target(info.filename, data_dir, site_rel)
                content = zf.read(info)
                executable = bool((info.external_attr >> 16) & 0o111)
                if rel.startswith("bin/"):
                    content, executable = _fix_script(content, python), True
                _write(stage, rel, content, executable, records)
            entry_points = zf.read(f"{dist_info}/entry_points.txt") if f"{dist_info}/entry_points.txt" in zf.namelist() else b""
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BuildError(f"{wheel.name}: cannot install this wheel: {exc}") from exc
    for name, module, attr in _console_scripts(entry_points):
        head, _, _ = attr.partition(".")
        script = _SCRIPT.format(python=python, module=module, head=head, call=attr).encode()
        _write(stage, f"bin/{name}", script, True, records)
    dist_rel = f"{site_rel}/{dist_info}"
    records.pop(f"{dist_rel}/RECORD", None)
    _write(stage, f"{dist_rel}/INSTALLER", f"{INSTALLER}\n".encode(), False, records)
    (stage / dist_rel / "RECORD").write_text(_record(records, site_rel, dist_rel))


def _dist_info_dir(zf: zipfile.ZipFile, wheel: Path) -> str:
    tops = {name.split("/", 1)[0] for name in zf.namelist()}
    infos = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(infos) != 1:
        raise BuildError(f"{wheel.name}: expected one .dist-info directory, found {len(infos)}")
    return infos[0]


def _target(name: str, data_dir: str, site_rel: str) -> str:
    """Where a wheel member goes, relative to the venv root."""
    parts = PurePosixPath(name).parts
    if not parts or ".." in parts or name.startswith("/"):
        raise BuildError(f"wheel member {name!r} escapes the install location")
    if parts[0] != data_dir:
        return f"{site_rel}/{name}"
    if len(parts) < 3:
        raise BuildError(f"wheel member {name!r} is not in a .data scheme directory")
    scheme, rest = parts[1], "/".join(parts[2:])
    if scheme in ("purelib", "platlib"):
        return f"{site_rel}/{rest}"
    if scheme == "scripts":
        return f"bin/{rest}"
    if scheme == "headers":
        return f"include/{rest}"
    if scheme == "data":
        return rest
    raise BuildError(f"wheel member {name!r} uses unknown scheme {scheme!r}")


def _fix_script(content: bytes, python: str) -> bytes:
    """Scripts shipped in ``.data/scripts`` start with ``#!python`` (or ``#!pythonw``) per the wheel spec."""
    for marker in (b"#!pythonw", b"#!python"):
        if content.startswith(marker):
            return f"#!{python}".encode() + content[len(marker) :]
    return content


def _write(stage: Path, rel: str, content: bytes, executable: bool, records: dict[str, tuple[str, int]]) -> None:
    path = stage / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o755 if executable else 0o644)
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    records[rel] = (f"sha256={digest}", len(content))


def _console_scripts(entry_points: bytes) -> list[tuple[str, str, str]]:
    if not entry_points:
        return []
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # script names are case-sensitive
    parser.read_string(entry_points.decode("utf-8"))
    scripts = []
    for section in ("console_scripts", "gui_scripts"):
        if parser.has_section(section):
            for name, value in parser.items(section):
                module, _, attr = value.split("[", 1)[0].strip().partition(":")
                if "/" in name or not module or not attr:
                    raise BuildError(f"invalid entry point {name} = {value}")
                scripts.append((name, module.strip(), attr.strip()))
    return sorted(scripts)


def _record(records: dict[str, tuple[str, int]], site_rel: str, dist_rel: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for rel, (digest, size) in sorted(records.items()):
        writer.writerow([posixpath.relpath(rel, site_rel), digest, size])
    writer.writerow([posixpath.relpath(f"{dist_rel}/RECORD", site_rel), "", ""])
    return out.getvalue()
