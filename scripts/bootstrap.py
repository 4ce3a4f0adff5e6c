#!/usr/bin/env python3
"""Fetch the pinned uv (hash-verified) with nothing but the Python standard library.

A fresh machine may lack pip and venv (Debian's python3 without python3-venv),
so this downloads uv's wheel from PyPI, checks its sha256 against the pin below
and unpacks the `uv` binary into .dev/bin. uv then builds .venv from uv.lock.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import stat
import sys
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.9"
WHEELS = {
    "x86_64": (
        "https://files.pythonhosted.org/packages/3d/aa/26d64642d808de4a652579ef950d7cd2d37f080a8babf9c67c6b75fc4c3f/"
        "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    ),
    "aarch64": (
        "https://files.pythonhosted.org/packages/57/15/94b6cd62ac3ff6550288328e8035288875197cbc183f51554b266a69877b/"
        "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    ),
}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    target = root / ".dev" / "bin" / "uv"
    if target.exists() and _version_ok(target):
        print(target)
        return 0
    machine = platform.machine()
    if machine not in WHEELS:
        sys.stderr.write(f"bootstrap: no pinned uv wheel for {machine}; install uv {UV_VERSION} and put it on PATH\n")
        return 1
    url, sha256 = WHEELS[machine]
    data = _download(url)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        sys.stderr.write(f"bootstrap: uv wheel sha256 mismatch: expected {sha256}, got {actual}\n")
        return 1
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        binary = wheel.read(f"uv-{UV_VERSION}.data/scripts/uv")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(binary)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(partial, target)
    print(target)
    return 0


def _download(url: str) -> bytes:
    import ssl

    cafile = next((p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt") if os.path.exists(p)), None)
    context = ssl.create_default_context(cafile=cafile)
    last: Exception | None = None
    for _ in range(3):
        try:
            with urllib.request.urlopen(url, timeout=120, context=context) as response:
                return response.read()
        except OSError as exc:
            last = exc
    raise SystemExit(f"bootstrap: cannot download {url}: {last}")


def _version_ok(binary: Path) -> bool:
    import subprocess

    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return False
    return out.split()[1:2] == [UV_VERSION]


if __name__ == "__main__":
    sys.exit(main())
