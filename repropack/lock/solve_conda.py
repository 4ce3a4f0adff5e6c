"""The conda part of an environment, solved in-process with py-rattler.

No conda, mamba or micromamba executable is involved. Channels are read through their
mirrors; every record is stored under its canonical channel URL (see
:mod:`repropack.lock.channels`). A previous lock's records are given to the solver as
``locked_packages``, so a relock moves nothing that need not move (``--update NAME``
releases that package).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from repropack.errors import SolveError
from repropack.lock.channels import canonical_channel_url, solve_url, strip_credentials, to_canonical

# What a target machine is assumed to offer, as conda-lock assumes (its defaults), so that
# locking for another OS or an older glibc needs no such machine.
_VIRTUAL = {
    "linux": [("__unix", "0"), ("__linux", "5.10"), ("__glibc", "2.28")],
    "osx-64": [("__unix", "0"), ("__osx", "10.15")],
    "osx-arm64": [("__unix", "0"), ("__osx", "11.0")],
    "win": [("__win", "0")],
}


@dataclass(frozen=True)
class CondaPackage:
    """One locked conda package for one target platform."""

    name: str
    version: str
    build: str
    platform: str  # the platform locked for (a noarch package appears under each)
    subdir: str
    url: str  # canonical, credential-free
    channel: str  # canonical channel URL
    sha256: str
    md5: str
    depends: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def dependencies(self) -> dict[str, str]:
        out = {}
        for dep in self.depends:
            name, _, rest = dep.strip().partition(" ")
            out[name] = rest.strip() or "*"
        return out


def virtual_packages(platform: str) -> list:
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    key = platform if platform in _VIRTUAL else platform.split("-")[0]
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString("0")) for n, v in _VIRTUAL.get(key, [])]


def check_specs(env: str, specs: Sequence[str]) -> None:
    """Refuse a malformed match spec by name before solving."""
    from rattler import MatchSpec

    for spec in specs:
        try:
            MatchSpec(spec)
        except Exception as exc:  # rattler raises its own InvalidMatchSpecError
            raise SolveError(f"environments.{env}.conda: malformed spec {spec!r}: {exc}") from None


def _missing_subdir(sources: Sequence[str], platform: str) -> list[str]:
    """file:// channels that have no such subdir (rattler would silently treat it as empty)."""
    missing = []
    for url in sources:
        if url.startswith("file://"):
            path = Path(unquote(urlsplit(url).path)) / platform / "repodata.json"
            if not path.exists():
                missing.append(f"{url} has no {platform}/repodata.json")
    return missing


def solve(
    env: str,
    specs: Sequence[str],
    channels: Sequence[str],
    platform: str,
    mirror_map: Mapping[str, str],
    locked: Iterable[CondaPackage] = (),
    update: Iterable[str] = (),
) -> list[CondaPackage]:
    """Solve ``specs`` for one platform; raise :class:`SolveError` naming the problem."""
    check_specs(env, specs)
    if not channels:
        raise SolveError(f"environments.{env}: conda packages need at least one channel (`channels = [...]`)")
    sources = [solve_url(c, mirror_map) for c in channels]
    missing = _missing_subdir(sources, platform)
    if missing and platform != "noarch":
        raise SolveError(f"environment {env}: platform {platform} is not offered: {'; '.join(missing)}")
    try:
        records = asyncio.run(_solve(sources, specs, platform, list(locked), set(update)))
    except Exception as exc:
        if type(exc).__name__ in ("SolverError", "InvalidMatchSpecError", "GatewayError", "FetchRepoDataError"):
            text = " ".join(str(exc).split())
            raise SolveError(f"environment {env}, platform {platform}: cannot solve {list(specs)}: {text}") from None
        raise
    return sorted((_package(r, platform, channels, mirror_map) for r in records), key=lambda p: p.name)


async def _solve(sources, specs, platform, locked, update):
    import rattler

    gateway = rattler.Gateway(show_progress=False)
    platforms = [platform, "noarch"] if platform != "noarch" else ["noarch"]
    keep = [p for p in locked if p.name not in update]
    locked_records = await _records_for(gateway, sources, platforms, keep) if keep else []
    return await rattler.solve(
        sources=sources, specs=list(specs), gateway=gateway, platforms=platforms,
        locked_packages=locked_records, virtual_packages=virtual_packages(platform),
        channel_relations="disabled",
    )


async def _records_for(gateway, sources, platforms, wanted: list[CondaPackage]):
    """The repodata records of previously locked packages (matched by sha256), when still offered."""
    by_sha = {p.sha256 for p in wanted}
    result = await gateway.query(sources, platforms, sorted({p.name for p in wanted}), recursive=False)
    return [r for per_channel in result for r in per_channel if r.sha256 and r.sha256.hex() in by_sha]


def _channel_of(url: str, channels: Sequence[str], mirror_map: Mapping[str, str]) -> str:
    for channel in channels:
        for base in (solve_url(channel, mirror_map), strip_credentials(solve_url(channel, mirror_map))):
            if url.startswith(base.rstrip("/") + "/"):
                return channel
    return channels[0]


def _package(record, platform: str, channels: Sequence[str], mirror_map: Mapping[str, str]) -> CondaPackage:
    channel = _channel_of(record.url, channels, mirror_map)
    return CondaPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        platform=platform,
        subdir=str(record.subdir),
        url=to_canonical(record.url, channel, mirror_map),
        channel=canonical_channel_url(channel),
        sha256=record.sha256.hex(),
        md5=record.md5.hex(),
        depends=tuple(record.depends),
    )
