#!/usr/bin/env python3
"""Generate a real, local conda channel with no conda installation and no network.

Usage:  python make_channel.py [CHANNEL_DIR]      (default: ./channel next to this script)

The packages are real conda packages, byte for byte deterministic (fixed mtimes,
owners and entry order), in both formats: ``.conda`` (zip of zstd tars) and
``.tar.bz2``. Each has ``info/index.json``, ``info/paths.json`` and ``info/files``;
one carries a bin/ script with a prefix placeholder (``info/has_prefix``), so an
install shows the placeholder rewritten. The channel is indexed with rattler's
indexer. Running the script again rebuilds the same bytes (idempotent).

Tests import :func:`write_package` and :func:`index_channel` to build their own channels.
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import io
import json
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# conda's classic placeholder is 255 characters long so any real prefix fits into binaries;
# text files are rewritten whatever the length.
PLACEHOLDER = "/opt/placeholder_" + "_placehold" * 23 + "_pl"
EPOCH = 1_700_000_000  # 2023-11-14: every mtime and index timestamp, for identical bytes each run
ZIP_DATE = (2023, 11, 14, 0, 0, 0)


@dataclass
class PackageFile:
    path: str
    content: bytes
    executable: bool = False
    has_prefix: bool = False  # text file carrying PLACEHOLDER


@dataclass
class Package:
    name: str
    version: str
    build: str = "0"
    build_number: int = 0
    subdir: str = "noarch"
    depends: Sequence[str] = ()
    constrains: Sequence[str] = ()
    files: Sequence[PackageFile] = ()
    fmt: str = ".conda"  # or ".tar.bz2"
    extra_index: Mapping[str, object] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"


def _tar_bytes(entries: Sequence[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in sorted(entries):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _info_files(pkg: Package) -> dict[str, bytes]:
    index = {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": pkg.build_number,
        "depends": list(pkg.depends),
        "constrains": list(pkg.constrains),
        "license": "CC0-1.0",
        "subdir": pkg.subdir,
        "timestamp": EPOCH * 1000,
        **({"noarch": "generic"} if pkg.subdir == "noarch" else {}),
        **({"platform": pkg.subdir.split("-")[0], "arch": _arch(pkg.subdir)} if pkg.subdir != "noarch" else {}),
        **pkg.extra_index,
    }
    paths = []
    for f in sorted(pkg.files, key=lambda f: f.path):
        entry = {"_path": f.path, "path_type": "hardlink", "sha256": hashlib.sha256(f.content).hexdigest(),
                 "size_in_bytes": len(f.content)}
        if f.has_prefix:
            entry.update(file_mode="text", prefix_placeholder=PLACEHOLDER)
        paths.append(entry)
    info = {
        "info/index.json": _json(index),
        "info/paths.json": _json({"paths": paths, "paths_version": 1}),
        "info/files": "".join(f"{f.path}\n" for f in sorted(pkg.files, key=lambda f: f.path)).encode(),
        "info/about.json": _json({"summary": f"{pkg.name}: a generated test package", "license": "CC0-1.0"}),
    }
    prefixed = [f for f in pkg.files if f.has_prefix]
    if prefixed:
        info["info/has_prefix"] = "".join(f"{PLACEHOLDER} text {f.path}\n" for f in prefixed).encode()
    return info


def _arch(subdir: str) -> str:
    return {"64": "x86_64", "arm64": "arm64", "aarch64": "aarch64"}.get(subdir.split("-")[-1], "x86_64")


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _payload(pkg: Package) -> list[tuple[str, bytes, int]]:
    return [(f.path, f.content, 0o755 if f.executable else 0o644) for f in pkg.files]


def build_archive(pkg: Package) -> bytes:
    """The package's bytes in its format (deterministic)."""
    info = [(name, data, 0o644) for name, data in _info_files(pkg).items()]
    if pkg.fmt == ".tar.bz2":
        return bz2.compress(_tar_bytes(info + _payload(pkg)), 9)
    import zstandard

    compressor = zstandard.ZstdCompressor(level=19)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        members = [
            ("metadata.json", _json({"conda_pkg_format_version": 2})),
            (f"pkg-{pkg.stem}.tar.zst", compressor.compress(_tar_bytes(_payload(pkg)))),
            (f"info-{pkg.stem}.tar.zst", compressor.compress(_tar_bytes(info))),
        ]
        for name, data in members:
            entry = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return buffer.getvalue()


def write_package(channel: Path, pkg: Package) -> Path:
    """Write one package under ``channel/<subdir>/``; rewrites only when the bytes differ."""
    target = channel / pkg.subdir / f"{pkg.stem}{pkg.fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    data = build_archive(pkg)
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


def index_channel(channel: Path, subdirs: Sequence[str] = ()) -> None:
    """Index every subdir with rattler's indexer (noarch always exists, as conda requires)."""
    import rattler
    from rattler.index import index_fs

    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    found = {p.name for p in channel.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for subdir in sorted({"noarch", *subdirs} | found):
        (channel / subdir).mkdir(parents=True, exist_ok=True)
        asyncio.run(index_fs(channel_directory=channel, target_platform=rattler.Subdir(subdir),
                             write_zst=False, write_shards=False, force=True))
        _pin_index_time(channel / subdir / "repodata.json")
    shutil.rmtree(channel / ".tmp", ignore_errors=True)


def _pin_index_time(repodata: Path) -> None:
    # The indexer stamps records with the time of indexing; a fixed stamp keeps reruns byte-identical.
    data = json.loads(repodata.read_text())
    for key in ("packages", "packages.conda"):
        for record in data.get(key, {}).values():
            if "indexed_timestamp" in record:
                record["indexed_timestamp"] = EPOCH * 1000
    repodata.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))


def build_channel(channel: Path, packages: Sequence[Package], subdirs: Sequence[str] = ()) -> Path:
    """Write exactly these packages (removing others) and index the channel."""
    wanted = set()
    for pkg in packages:
        wanted.add(write_package(channel, pkg))
    for old in list(channel.glob("*/*.conda")) + list(channel.glob("*/*.tar.bz2")):
        if old not in wanted:
            old.unlink()
    index_channel(channel, subdirs)
    return channel


def example_packages() -> list[Package]:
    """The packages of examples/conda-local: a script, its data, and a python-free fake numpy."""
    greet = Package(
        name="greet", version="1.0.0", depends=["greet-data >=1"], fmt=".conda",
        files=[PackageFile("bin/greet", (
            "#!/bin/sh\n"
            "# prefix: " + PLACEHOLDER + "\n"
            'exec cat "' + PLACEHOLDER + '/share/greet/message.txt"\n').encode(), executable=True, has_prefix=True)],
    )
    data = [
        Package(name="greet-data", version=v, build="0", fmt=".tar.bz2",
                files=[PackageFile("share/greet/message.txt", f"hello from greet-data {v}\n".encode())])
        for v in ("1.0.0", "1.1.0")
    ]
    # A python-free stand-in for numpy: enough for the PyPI resolver to see `numpy` as provided by conda,
    # and for `import numpy` / importlib.metadata to find it in the environment.
    site = "lib/python3.11/site-packages"
    numpy = Package(
        name="numpy", version="1.26.4", build="fake_0", fmt=".conda",
        files=[
            PackageFile(f"{site}/numpy/__init__.py", b'__version__ = "1.26.4"\nREPROPACK_FAKE = "conda"\n'),
            PackageFile(f"{site}/numpy-1.26.4.dist-info/METADATA",
                        b"Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n"),
            PackageFile(f"{site}/numpy-1.26.4.dist-info/INSTALLER", b"conda\n"),
        ],
    )
    return [greet, *data, numpy]


def main(argv: Sequence[str]) -> int:
    channel = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "channel"
    build_channel(channel.resolve(), example_packages(), subdirs=["linux-64"])
    print(f"channel ready: {channel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
