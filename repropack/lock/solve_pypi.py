"""The PyPI part of an environment, resolved with uv into a PEP 751 ``pylock.toml``.

``uv pip compile --python-version X --python-platform P --generate-hashes --only-binary
:all:`` resolves for the locked Python and each target platform without needing that
interpreter. Only the environment's declared ``indexes`` are used, with
``--index-strategy first-index`` (each package comes from the first index, in manifest
order, that has it: no extra-index mixing, no dependency confusion; see
:func:`index_args`); user and site uv configuration is ignored (``--no-config``). Only wheels are locked, so installing never builds anything.

Packages conda already provides: each conda package of the same platform is passed to
uv as a constraint ``name==<conda version>`` (the conda name taken as the PyPI name) and
as ``--no-emit-package name``. uv must then choose PyPI packages compatible with conda's
version, and the pylock leaves that package out, so no wheel ever replaces a conda
package. A conda version that is not a valid PEP 440 version cannot be expressed and is
only excluded from the output.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repropack.errors import LockError, SolveError
from repropack.lock.channels import strip_credentials

PYTHON_PLATFORMS = {
    "linux-64": "x86_64-manylinux_2_28",
    "linux-aarch64": "aarch64-manylinux_2_28",
    "osx-64": "x86_64-apple-darwin",
    "osx-arm64": "aarch64-apple-darwin",
    "win-64": "x86_64-pc-windows-msvc",
}
# PEP 751 `environments`: the one platform a pylock was resolved for, as a PEP 508 marker.
PLATFORM_MARKERS = {
    "linux-64": "sys_platform == 'linux' and platform_machine == 'x86_64'",
    "linux-aarch64": "sys_platform == 'linux' and platform_machine == 'aarch64'",
    "osx-64": "sys_platform == 'darwin' and platform_machine == 'x86_64'",
    "osx-arm64": "sys_platform == 'darwin' and platform_machine == 'arm64'",
    "win-64": "sys_platform == 'win32' and platform_machine == 'AMD64'",
}
_NOT_PYPI = {"python", "pip", "python_abi"}  # conda-only names that must not constrain the PyPI side
_URL = re.compile(r'(url = ")([^"]+)(")')


@dataclass(frozen=True)
class PipPackage:
    """One locked wheel for one platform."""

    name: str
    version: str
    platform: str
    url: str
    sha256: str
    size: int | None = None  # bytes, as the pylock records it

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("#", 1)[0]


def uv_bin() -> str:
    from uv import find_uv_bin

    return os.environ.get("REPROPACK_UV") or find_uv_bin()


def _uv_env() -> dict[str, str]:
    # Index choices come from the manifest only; a user's UV_INDEX_URL must not sneak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_INDEX", "UV_EXTRA_INDEX", "PIP_", "UV_FIND"))}
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    return env


def compile_pylock(
    env: str,
    requirements: Sequence[str],
    python: str | None,
    platform: str,
    indexes: Sequence[str],
    provided: Mapping[str, str] | None = None,
    previous: str | None = None,
    upgrade: Sequence[str] = (),
) -> str:
    """Resolve and return the pylock text (credential-free URLs).

    ``previous`` (an earlier pylock) makes uv keep its versions; ``upgrade`` releases those names.
    """
    if python is None:
        raise LockError(f"environments.{env}: pip packages need a `python` version (e.g. python = \"3.11\")")
    if platform not in PYTHON_PLATFORMS:
        raise SolveError(f"environment {env}: no PyPI platform known for {platform!r} "
                         f"(known: {', '.join(sorted(PYTHON_PLATFORMS))})")
    if not indexes:
        raise LockError(f"environments.{env}: pip packages need at least one index (`indexes = [...]`)")
    with tempfile.TemporaryDirectory(prefix="repropack-uv-") as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text("".join(f"{r}\n" for r in requirements))
        if previous:
            (work / "pylock.toml").write_text(previous)  # uv prefers the versions of an existing output
        args = [uv_bin(), "pip", "compile", "requirements.in", "-o", "pylock.toml", "--no-header", "--no-config",
                "--quiet", "--python-version", python, "--python-platform", PYTHON_PLATFORMS[platform],
                "--generate-hashes", "--only-binary", ":all:", "--index-strategy", "first-index",
                *index_args(indexes)]
        constraints, excluded = _provided_args(provided or {})
        if constraints:
            (work / "conda-provided.txt").write_text("".join(f"{c}\n" for c in constraints))
            args += ["-c", "conda-provided.txt"]
        for name in excluded:
            args += ["--no-emit-package", name]
        for name in upgrade:
            args += ["--upgrade-package", name]
        proc = subprocess.run(args, cwd=work, env=_uv_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SolveError(f"environment {env}, platform {platform}: cannot resolve the PyPI packages "
                             f"{list(requirements)}: {_uv_message(proc.stderr)}")
        text = (work / "pylock.toml").read_text(encoding="utf-8")
    text = _URL.sub(lambda m: m.group(1) + strip_credentials(m.group(2)) + m.group(3), text)
    return describe_pylock(text, python, platform, indexes)


_PACKAGE_VERSION = re.compile(r'^(\[\[packages\]\]\nname = "[^"\n]+"\nversion = "[^"\n]+"\n)', re.M)


def describe_pylock(text: str, python: str, platform: str, indexes: Sequence[str]) -> str:
    """Say what the pylock is for, so an installer refuses the wrong target up front (PEP 751).

    uv writes ``requires-python = ">=X.Y"``, but the resolution (and wheels such as cp311-only
    ones) holds for Python X.Y alone: ``==X.Y.*``. ``environments`` names the one platform it was
    resolved for. With a single index every package came from it: ``packages.index``.
    """
    head, sep, body = text.partition("\n[[")
    keep = [line for line in head.splitlines() if line and not line.startswith(("requires-python =", "environments ="))]
    keep += [f'requires-python = "=={".".join(python.split(".")[:2])}.*"',
             f'environments = ["{PLATFORM_MARKERS[platform]}"]']
    text = "\n".join(keep) + "\n" + (sep + body if sep else "")
    if len(indexes) == 1:
        index = f'index = "{strip_credentials(indexes[0])}"\n'
        text = re.sub(r'^index = "[^"\n]*"\n', "", text, flags=re.M)
        text = _PACKAGE_VERSION.sub(lambda m: m.group(1) + index, text)
    return text


def index_args(indexes: Sequence[str]) -> list[str]:
    """uv options that consult ``indexes`` in manifest order and nothing else.

    uv ranks ``--extra-index-url`` above ``--index-url``, and ``--index`` entries above the
    default index (PyPI unless ``--default-index`` replaces it), earlier ``--index`` first.
    So every index but the last is an ``--index`` in order and the last is the default:
    with ``first-index`` a name on a later index can never shadow an earlier one.
    """
    args = [arg for url in indexes[:-1] for arg in ("--index", url)]
    return [*args, "--default-index", indexes[-1]]


def _provided_args(provided: Mapping[str, str]) -> tuple[list[str], list[str]]:
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    constraints, excluded = [], []
    for name, version in sorted(provided.items()):
        if name in _NOT_PYPI or name.startswith("__"):
            continue
        pypi = canonicalize_name(name)
        excluded.append(pypi)
        try:
            constraints.append(f"{pypi}=={Version(version)}")
        except InvalidVersion:
            continue
    return constraints, excluded


def _uv_message(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.lstrip().startswith("warning:")]
    text = " ".join(lines) or "uv failed without a message"
    return re.sub(r"://[^/@\s]+@", "://", text)


def read_pylock(text: str, platform: str) -> list[PipPackage]:
    """Every wheel in a pylock (uv may list more than one compatible wheel per package)."""
    data = tomllib.loads(text)
    out = []
    for pkg in data.get("packages", []):
        wheels = pkg.get("wheels") or []
        if not wheels:
            raise LockError(f"pylock entry {pkg.get('name')} has no wheel; only wheels can be installed")
        for wheel in wheels:
            out.append(PipPackage(name=pkg["name"], version=str(pkg["version"]), platform=platform,
                                  url=wheel["url"], sha256=wheel["hashes"]["sha256"], size=wheel.get("size")))
    return out
