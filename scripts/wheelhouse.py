"""Fill a wheelhouse for the Containerfile from a PEP 751 lock exported from uv.lock.

    python scripts/wheelhouse.py PYLOCK OUTDIR [--python 3.11] [--glibc 2.36] [--arch x86_64]

For each locked package whose marker holds on the target (Linux, CPython), it takes the wheel that best
fits the target's tags, downloads it (or reuses the cache, ~/.cache/repropack/wheels) and checks its
sha256 against the lock; then it writes OUTDIR/requirements.txt (`name==version --hash=sha256:...`)
for `uv pip install --no-index --require-hashes`. A package with no fitting wheel is an error: the image
build has no network and no compiler. Run through scripts/wheelhouse.sh, which also adds repropack's wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import ssl
import sys
import tomllib
import urllib.request
from pathlib import Path

from packaging import tags
from packaging.markers import Marker
from packaging.utils import parse_wheel_filename

CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def target_tags(python: tuple[int, int], glibc: tuple[int, int], arch: str) -> list[tags.Tag]:
    """Tags of CPython `python` on glibc `glibc`, most specific first (as pip would rank them)."""
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}  # PEP 599/571/513 aliases
    platforms = []
    for minor in range(glibc[1], 4, -1):
        platforms.append(f"manylinux_{glibc[0]}_{minor}_{arch}")
        if minor in legacy:
            platforms.append(f"{legacy[minor]}_{arch}")
    return list(tags.cpython_tags(python, platforms=platforms)) + list(tags.compatible_tags(python, f"cp{python[0]}{python[1]}", platforms))


def marker_environment(python: tuple[int, int], arch: str) -> dict[str, str]:
    version = f"{python[0]}.{python[1]}"
    return {
        "implementation_name": "cpython", "implementation_version": f"{version}.0", "os_name": "posix",
        "platform_machine": arch, "platform_python_implementation": "CPython", "platform_release": "",
        "platform_system": "Linux", "platform_version": "", "python_full_version": f"{version}.0",
        "python_version": version, "sys_platform": "linux",
    }


def best_wheel(package: dict, ranking: dict[tags.Tag, int]) -> dict | None:
    best, best_rank = None, len(ranking)
    for wheel in package.get("wheels", []):
        name = wheel.get("name") or wheel["url"].rsplit("/", 1)[-1]
        rank = min((ranking.get(tag, best_rank) for tag in parse_wheel_filename(name)[3]), default=best_rank)
        if rank < best_rank:
            best, best_rank = {**wheel, "name": name}, rank
    return best


def fetch(wheel: dict, cache: Path, context: ssl.SSLContext) -> Path:
    sha256 = wheel["hashes"]["sha256"]
    cached = cache / sha256[:2] / sha256 / wheel["name"]
    if cached.exists() and _sha256(cached) == sha256:
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    with urllib.request.urlopen(wheel["url"], timeout=300, context=context) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out)
    actual = _sha256(partial)
    if actual != sha256:
        partial.unlink()
        raise SystemExit(f"wheelhouse: {wheel['name']}: sha256 {actual} does not match the lock's {sha256}")
    os.replace(partial, cached)
    return cached


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pylock", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--glibc", default="2.36", help="the image's glibc (Debian 12: 2.36)")
    parser.add_argument("--arch", default="x86_64")
    args = parser.parse_args(argv)
    python = tuple(int(p) for p in args.python.split("."))[:2]
    glibc = tuple(int(p) for p in args.glibc.split("."))[:2]
    ranking = {tag: i for i, tag in enumerate(target_tags(python, glibc, args.arch))}
    environment = marker_environment(python, args.arch)
    cafile = next((p for p in CA_BUNDLES if os.path.exists(p)), None)
    context = ssl.create_default_context(cafile=cafile)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "repropack" / "wheels"

    lock = tomllib.loads(args.pylock.read_text())
    args.outdir.mkdir(parents=True, exist_ok=True)
    lines, missing = [], []
    for package in lock["packages"]:
        if "marker" in package and not Marker(package["marker"]).evaluate(environment):
            continue
        wheel = best_wheel(package, ranking)
        if wheel is None:
            missing.append(f"{package['name']}=={package['version']}")
            continue
        shutil.copy2(fetch(wheel, cache, context), args.outdir / wheel["name"])
        lines.append(f"{package['name']}=={package['version']} --hash=sha256:{wheel['hashes']['sha256']}")
    if missing:
        print(f"wheelhouse: no wheel fits CPython {args.python} glibc {args.glibc} {args.arch} for: {', '.join(missing)}", file=sys.stderr)
        return 1
    (args.outdir / "requirements.txt").write_text("\n".join(sorted(lines)) + "\n")
    print(f"wheelhouse: {len(lines)} locked wheels in {args.outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
