"""``repropack fetch``: every locked artifact into the verified cache.

Downloads run in parallel threads; each is streamed through sha256 into a temporary
file (see :mod:`repropack.lock.cache`). Transient failures (connection drops, cut
transfers, timeouts, HTTP 429/5xx) are retried with exponential backoff; a digest
mismatch is not (the bytes are wrong, not late). Conda URLs are fetched through the
channel mirrors in force now, so a lock made against a mirror fetches from the original
and vice versa. Credentials for a host come from the manifest's channel/index URLs and
never appear in messages. ``offline=True`` touches no network and names what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from repropack.errors import FetchError
from repropack.lock.cache import ArtifactCache
from repropack.lock.channels import credentials_for, mirrors, to_download
from repropack.lock.lockfile import LockSet, conda_lock_relpath, pylock_relpath

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Artifact:
    kind: str  # "conda" or "pip"
    name: str
    version: str
    url: str  # canonical
    sha256: str
    filename: str
    platform: str
    size: int | None = None  # bytes, where the lock file records it (pylock does, conda-lock v1 does not)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({self.filename})"


class Reporter(Protocol):
    def on_start(self, artifacts: Sequence[Artifact]) -> None: ...
    def on_bytes(self, count: int) -> None: ...
    def on_done(self, artifact: Artifact, cached: bool) -> None: ...


@dataclass
class FetchReport:
    downloaded: list[Artifact] = field(default_factory=list)
    cached: list[Artifact] = field(default_factory=list)
    bytes: int = 0


def environment_artifacts(lockset: LockSet, env_name: str, platform: str | None = None) -> list[Artifact]:
    """The artifacts of one environment (one platform, or all), conda first, in lock order."""
    from repropack.lock.condalock import read_conda_packages
    from repropack.lock.solve_pypi import read_pylock

    env = lockset.environment(env_name)
    out: list[Artifact] = []
    if conda_lock_relpath(env_name) in env.files:
        for p in read_conda_packages(lockset.path(conda_lock_relpath(env_name))):
            if platform is None or p.platform == platform:
                out.append(Artifact("conda", p.name, p.version, p.url, p.sha256, p.filename, p.platform))
    for plat in env.platforms:
        relpath = pylock_relpath(env_name, plat)
        if (platform is None or plat == platform) and relpath in env.files:
            for w in read_pylock(lockset.path(relpath).read_text(encoding="utf-8"), plat):
                out.append(Artifact("pip", w.name, w.version, w.url, w.sha256, w.filename, plat, w.size))
    return out


def all_artifacts(lockset: LockSet, environments: Iterable[str] | None = None,
                  platforms: Iterable[str] | None = None) -> list[Artifact]:
    seen: dict[str, Artifact] = {}
    wanted = set(platforms) if platforms is not None else None
    for name in sorted(environments or lockset.environments):
        for artifact in environment_artifacts(lockset, name):
            if wanted is None or artifact.platform in wanted:
                seen.setdefault(artifact.sha256, artifact)
    return list(seen.values())


def _manifest_context(lockset: LockSet, manifest: Any) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    if manifest is None:
        try:
            from repropack.manifest import load_manifest

            manifest = load_manifest(lockset.root)
        except Exception:  # no loader or no manifest: the environment variable mirrors still apply
            manifest = None
    if manifest is None:
        return mirrors({}, lockset.root), {}
    urls = [u for env in manifest.environments.values() for u in (*env.channels, *env.indexes)]
    return mirrors(manifest.mirrors, lockset.root), credentials_for(urls)


def fetch(
    lockset: LockSet,
    offline: bool = False,
    *,
    manifest: Any = None,
    environments: Iterable[str] | None = None,
    platforms: Iterable[str] | None = None,
    cache: ArtifactCache | None = None,
    jobs: int = 8,
    retries: int = 4,
    backoff: float = 0.5,
    reporter: Reporter | None = None,
) -> FetchReport:
    """Make every artifact of the lock (or of ``environments``, ``platforms``) present and verified in the cache."""
    cache = cache or ArtifactCache()
    artifacts = all_artifacts(lockset, environments, platforms)
    report = FetchReport()
    if reporter:
        reporter.on_start(artifacts)
    todo = []
    for artifact, found in zip(artifacts, cache.lookup_many((a.sha256, a.filename) for a in artifacts)):
        if found:
            report.cached.append(artifact)
            if reporter:
                reporter.on_done(artifact, True)
        else:
            todo.append(artifact)
    if offline and todo:
        names = ", ".join(a.label for a in todo[:10]) + (f" and {len(todo) - 10} more" if len(todo) > 10 else "")
        raise FetchError(f"offline: {len(todo)} locked artifact(s) missing from the cache {cache.root}: {names}",
                         hint="run `repropack fetch` with network access")
    if not todo:
        return report
    mirror_map, creds = _manifest_context(lockset, manifest)
    downloader = _Downloader(cache, mirror_map, creds, retries, backoff, reporter)
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
        results = list(pool.map(downloader.get_safely, todo))
    failures = [error for error in results if isinstance(error, FetchError)]
    for artifact, result in zip(todo, results):
        if not isinstance(result, FetchError):
            report.downloaded.append(artifact)
            report.bytes += result
    if failures:
        more = f" (and {len(failures) - 1} more failure(s))" if len(failures) > 1 else ""
        raise FetchError(failures[0].message + more, hint=failures[0].hint)
    return report


class _Downloader:
    def __init__(self, cache, mirror_map: Mapping[str, str], creds, retries: int, backoff: float, reporter):
        import requests

        self.cache, self.mirror_map, self.creds = cache, mirror_map, creds
        self.retries, self.backoff, self.reporter = retries, backoff, reporter
        self.session = requests.Session()

    def get_safely(self, artifact: Artifact) -> int | FetchError:
        try:
            size = self.get(artifact)
        except FetchError as exc:
            return exc
        if self.reporter:
            self.reporter.on_done(artifact, False)
        return size

    def get(self, artifact: Artifact) -> int:
        url = to_download(artifact.url, self.mirror_map)
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._once(artifact, url)
            except _Transient as exc:
                last = str(exc)
        raise FetchError(f"{artifact.label}: download from {_safe(url)} failed after {self.retries + 1} attempts: "
                         f"{last}", hint="check the network or the mirror; nothing partial was kept")

    def _once(self, artifact: Artifact, url: str) -> int:
        count = _Counter(self.reporter)
        if url.startswith("file://"):
            path = Path(unquote(urlsplit(url).path))
            if not path.is_file():
                raise FetchError(f"{artifact.label}: {path} does not exist")
            with path.open("rb") as handle:
                self.cache.store(artifact.sha256, artifact.filename, iter(lambda: handle.read(1 << 20), b""),
                                 label=artifact.label, on_bytes=count)
            return count.total
        self._http(artifact, url, count)
        return count.total

    def _http(self, artifact: Artifact, url: str, count: _Counter) -> None:
        import requests

        auth = self.creds.get(urlsplit(url).hostname or "")
        try:
            with self.session.get(url, stream=True, timeout=(10, 60), auth=auth) as resp:
                if resp.status_code in _RETRY_STATUS:
                    raise _Transient(f"HTTP {resp.status_code}")
                if resp.status_code >= 400:
                    raise FetchError(f"{artifact.label}: HTTP {resp.status_code} from {_safe(url)}")
                self.cache.store(artifact.sha256, artifact.filename, resp.iter_content(1 << 20),
                                 label=artifact.label, on_bytes=count)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Transient(_reason(exc)) from None


class _Counter:
    def __init__(self, reporter):
        self.total, self.reporter = 0, reporter

    def __call__(self, n: int) -> None:
        self.total += n
        if self.reporter:
            self.reporter.on_bytes(n)


class _Transient(Exception):
    pass


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "IncompleteRead" in text or "Connection broken" in text:
        return "connection cut mid-transfer"
    if "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[-1]) if "@" in parts.netloc else url
