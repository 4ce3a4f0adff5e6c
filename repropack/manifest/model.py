"""The typed, immutable manifest tree.

Built once by :func:`repropack.manifest.load_manifest`; every later stage (lock,
build, run, provenance) reads these objects and never the raw TOML. Mappings are
read-only views and sequences are tuples, so nothing downstream can mutate the
manifest it was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

Runtime = Literal["host", "docker", "apptainer"]

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    version: str | None = None
    description: str | None = None
    authors: tuple[str, ...] = ()
    license: str | None = None
    source: str | None = None  # where the source lives (OCI label org.opencontainers.image.source)
    url: str | None = None  # the project's home page (OCI label org.opencontainers.image.url)


@dataclass(frozen=True, slots=True)
class Environment:
    """One named software environment; the lock pins it per platform."""

    name: str
    python: str | None = None
    channels: tuple[str, ...] = ()
    conda: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ("https://pypi.org/simple",)
    platforms: tuple[str, ...] = ("linux-64",)

    @property
    def has_conda(self) -> bool:
        return bool(self.conda)

    @property
    def has_pip(self) -> bool:
        return bool(self.pip)


@dataclass(frozen=True, slots=True)
class Image:
    base: str | None = None
    name: str | None = None
    workdir: str = "/work"
    user: str | None = None


@dataclass(frozen=True, slots=True)
class DataItem:
    """An input fetched before any step runs, verified by sha256."""

    name: str
    path: str  # project-relative destination
    sha256: str
    url: str | None = None  # http(s) or file://; None: the file is already at `path`


@dataclass(frozen=True, slots=True)
class Quantity:
    """A byte or second amount, optionally growing with the attempt number.

    ``"2GB * attempt"`` is ``Quantity(2_000_000_000, per_attempt=True)``.
    """

    base: int
    per_attempt: bool = False

    def at(self, attempt: int) -> int:
        return self.base * attempt if self.per_attempt else self.base


@dataclass(frozen=True, slots=True)
class Resources:
    cpus: int = 1
    memory: Quantity | None = None  # bytes
    time: Quantity | None = None  # seconds
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One declared input or output pattern (project-relative, may hold placeholders)."""

    pattern: str
    name: str | None = None  # set when inputs/outputs is a table
    pipe: bool = False  # outputs only: streamed to the consumer through a FIFO


@dataclass(frozen=True, slots=True)
class Foreach:
    """A step's scatter: column names and the rows of values (product already taken)."""

    keys: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    explicit: bool = False  # rows written out (an array of tables), not the product of value arrays

    def __bool__(self) -> bool:
        return bool(self.keys)

    def values(self, key: str) -> tuple[str, ...]:
        """The distinct values of one key, in first-seen order."""
        index = self.keys.index(key)
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.setdefault(row[index], None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    run: str
    environment: str | None = None  # None: the host's own tools (no environment defined)
    foreach: Foreach = field(default_factory=Foreach)
    inputs: tuple[FileSpec, ...] = ()
    outputs: tuple[FileSpec, ...] = ()
    inputs_named: bool = False  # inputs given as a table ({inputs.NAME})
    outputs_named: bool = False
    sources: tuple[str, ...] = ()
    sources_declared: bool = False  # False: sources are the project files the command names
    needs: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    profile: str | None = None  # None: the run's --profile, else "local"
    expect: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # output path -> "sha256:<hex>"
    use: str | None = None  # a reusable module (resolved at load)
    with_: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    line: int | None = None  # where the step starts in the manifest, for messages
    module: str | None = None  # the `use` step this step came from ("align" for "align.index")
    origin: Path | None = None  # the module file that declared it; None: the manifest itself
    key: tuple[str | int, ...] = ()  # its key path in that file, ("steps", 1), for messages


@dataclass(frozen=True, slots=True)
class Alerts:
    """``[alerts]`` (or a profile's ``alerts``): where run alerts go and when (repropack/observe/alerts.py)."""

    webhooks: tuple[str, ...] = ()  # Slack- or Mattermost-compatible incoming webhook URLs
    webhooks_env: tuple[str, ...] = ()  # names of environment variables holding webhook URLs (kept out of the file)
    email: tuple[str, ...] = ()
    smtp: str | None = None  # HOST or HOST:PORT
    sender: str | None = None  # the From address; default repropack@<this host>
    on: tuple[str, ...] = ("end", "failure", "anomaly")
    slow_factor: float = 3.0  # an instance running longer than this times its step's median
    min_samples: int = 3  # finished attempts of a step (or of the run) before medians and rates count
    memory_fraction: float = 0.9  # peak memory above this share of the request
    failure_rate: float = 0.5  # failed attempts over ended ones above this
    timeout: float = 5.0  # seconds one delivery may take


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    backend: str = "local"  # a name in repropack.backends.registry
    runtime: Runtime = "host"
    apptainer_flags: tuple[str, ...] = ()
    docker_flags: tuple[str, ...] = ()
    cpus: int | None = None  # cap on what the run may use at once
    memory: int | None = None  # bytes
    max_jobs: int | None = None
    env: tuple[str, ...] = ()  # caller's environment variables passed into steps (env-keyed ones included)
    env_keyed: tuple[str, ...] = ()  # of those, the ones whose values are part of cache keys (as digests)
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # backend-specific (partition, account, queue, ...)
    alerts: Alerts | None = None  # replaces the manifest's [alerts] for runs with this profile


@dataclass(frozen=True, slots=True)
class CausePattern:
    """A ``[[causes]]`` entry: a log signature of the project's own (repropack/observe/causes.py)."""

    pattern: str  # a regular expression searched in each line of a failed attempt's log tail
    cause: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class CompareRule:
    """A ``[compare]`` entry: how ``repropack rerun`` compares outputs matching ``pattern``."""

    pattern: str  # a glob over project-relative paths
    rule: str  # "exact" | "exists" | "ignore" | "ignore-lines"
    ignore_lines: str | None = None  # the regex of "ignore-lines"


@dataclass(frozen=True, slots=True)
class Manifest:
    path: Path  # absolute path of repropack.toml
    project: Project
    requires_repropack: str | None = None
    environments: Mapping[str, Environment] = field(default_factory=lambda: EMPTY)
    mirrors: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    image: Image = field(default_factory=Image)
    data: Mapping[str, DataItem] = field(default_factory=lambda: EMPTY)
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    steps: tuple[Step, ...] = ()
    profiles: Mapping[str, Profile] = field(default_factory=lambda: EMPTY)
    causes: tuple[CausePattern, ...] = ()  # [[causes]]: tried before the shipped table
    compare: tuple[CompareRule, ...] = ()  # [compare]: rerun's rules for outputs never byte-identical
    alerts: Alerts | None = None  # [alerts]
    raw: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # the parsed TOML (read-only), for canonical hashing
    param_texts: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # each param's default as it renders in a command (1, not 1.0)
    # file -> repropack.manifest.positions.Positions (key -> line:column), for later messages
    positions: Mapping[Path, Any] = field(default_factory=lambda: EMPTY, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def profile(self, name: str | None) -> Profile:
        if name is None:
            return self.profiles.get("local", Profile(name="local"))
        return self.profiles[name]


def freeze(value: Any) -> Any:
    """A read-only deep copy of parsed TOML: tables become read-only mappings, arrays tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (e.g. ``json.dumps(thaw(manifest.raw))`` for a canonical hash)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
