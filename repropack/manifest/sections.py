"""Validation of the manifest's sections other than steps: project, environments,
channels, image, data, params, profiles, requires-repropack."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from repropack.backends import registry
from repropack.manifest.model import CausePattern, CompareRule, DataItem, Environment, Image, Profile, Project
from repropack.manifest.placeholders import IDENTIFIER_RE, value_text
from repropack.manifest.positions import KeyPath
from repropack.manifest.units import UnitError, parse_bytes, parse_seconds
from repropack.manifest.validate import NAME_RE, Checker, normalize_path, path_problem, shown, type_name
from repropack.paths import protected_problem

TOP_KEYS = (
    "requires-repropack", "project", "environments", "channels", "image", "data", "params", "steps", "profiles",
    "causes", "compare", "alerts",
)
CAUSE_KEYS = ("pattern", "cause", "fix")
PROJECT_KEYS = ("name", "version", "description", "authors", "license", "source", "url")
ENVIRONMENT_KEYS = ("python", "channels", "conda", "pip", "indexes", "platforms")
IMAGE_KEYS = ("base", "name", "workdir", "user")
DATA_KEYS = ("url", "path", "sha256")
PARAM_KEYS = ("default", "description")
PROFILE_KEYS = ("backend", "runtime", "apptainer-flags", "docker-flags", "cpus", "memory", "max-jobs", "env", "env-keyed",
                "alerts")
RUNTIMES = ("host", "docker", "apptainer")
PLATFORMS = (
    "linux-64", "linux-aarch64", "linux-ppc64le", "linux-s390x", "linux-armv6l", "linux-armv7l", "linux-32",
    "osx-64", "osx-arm64", "win-64", "win-arm64", "win-32", "noarch", "emscripten-wasm32", "wasi-wasm32",
)
PROJECT_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
ENV_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
PYTHON_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
URL_RE = re.compile(r"^(https?|file)://\S+$")
WEB_URL_RE = re.compile(r"^https?://[^\s/]+\S*$")
CONDA_SPEC_RE = re.compile(r"^([A-Za-z0-9_.\-/:]+::)?[A-Za-z0-9_.\-*]+(\s*\S.*)?$")
ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def requires(check: Checker, data: dict[str, Any]) -> str | None:
    if "requires-repropack" not in data:
        return None
    key: KeyPath = ("requires-repropack",)
    text = data["requires-repropack"]
    if not check.expect(text, str, key):
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    from repropack import __version__

    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        check.error(key, f"{text!r} is not a version specifier (write e.g. \">=0.1\")")
        return None
    if not spec.contains(__version__, prereleases=True):
        check.error(key, f"this manifest needs repropack {text}; this is repropack {__version__}",
                    hint="install a matching repropack")
    return text


def project(check: Checker, data: dict[str, Any]) -> Project:
    key: KeyPath = ("project",)
    if "project" not in data:
        check.error((), "missing [project] table with a name", hint='add:  [project]  name = "my-analysis"')
        return Project(name="")
    table = check.table(data["project"], key)
    check.keys(table, PROJECT_KEYS, key)
    name = check.string(table, "name", key, required=True) or ""
    if name and not PROJECT_NAME_RE.match(name):
        check.error(key + ("name",), f"{name!r} is not a valid project name (lowercase letters, digits, '_' and '-')")
    return Project(
        name=name,
        version=check.string(table, "version", key),
        description=check.string(table, "description", key),
        authors=_authors(check, table, key),
        license=check.string(table, "license", key),
        source=_web_url(check, table, "source", key),
        url=_web_url(check, table, "url", key),
    )


def _web_url(check: Checker, table: dict[str, Any], name: str, key: KeyPath) -> str | None:
    value = check.string(table, name, key)
    if value is not None and not WEB_URL_RE.match(value):
        check.error(key + (name,), f"{value!r} is not a web address (write e.g. \"https://github.com/me/study\")")
        return None
    return value


def _authors(check: Checker, table: dict[str, Any], key: KeyPath) -> tuple[str, ...]:
    if "authors" not in table:
        return ()
    value = table["authors"]
    if not check.expect(value, list, key + ("authors",), "an array of names"):
        return ()
    out = []
    for i, item in enumerate(value):
        here = key + ("authors", i)
        if isinstance(item, dict):  # pyproject style: { name = "...", email = "..." }
            check.keys(item, ("name", "email"), here)
            name, email = check.string(item, "name", here), check.string(item, "email", here)
            out.append(f"{name} <{email}>" if name and email else (name or email or ""))
        elif check.expect(item, str, here, "a string or a table { name, email }"):
            out.append(item)
    return tuple(out)


def environments(check: Checker, data: dict[str, Any]) -> dict[str, Environment]:
    out: dict[str, Environment] = {}
    for name, value in check.table(data.get("environments", {}), ("environments",)).items():
        key: KeyPath = ("environments", name)
        if not ENV_NAME_RE.match(name):
            check.error(key, f"{name!r} is not a valid environment name (letters, digits, '_', '-', '.')")
        out[name] = environment(check, name, check.table(value, key), key)
    return out


def environment(check: Checker, name: str, table: dict[str, Any], key: KeyPath) -> Environment:
    check.keys(table, ENVIRONMENT_KEYS, key)
    python = None
    if "python" in table:
        value = table["python"]
        if isinstance(value, float):
            written = (check.positions.raw(key + ("python",)) if check.positions else None) or value
            check.error(key + ("python",), f"write the Python version as a string: \"{written}\"",
                        hint="as a number, 3.10 would read as 3.1")
        elif check.expect(value, str, key + ("python",)):
            if PYTHON_RE.match(value):
                python = value
            else:
                check.error(key + ("python",), f"{value!r} is not a Python version (write e.g. \"3.11\")")
    fields: dict[str, Any] = {"name": name, "python": python}
    for field_name in ("channels", "conda", "pip", "indexes", "platforms"):
        if field_name in table:
            fields[field_name] = check.strings(table, field_name, key)
    _check_specs(check, fields, key)
    return Environment(**fields)


def _check_specs(check: Checker, fields: dict[str, Any], key: KeyPath) -> None:
    for i, spec in enumerate(fields.get("pip", ())):
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            Requirement(spec)
        except InvalidRequirement as exc:
            check.error(key + ("pip", i), f"{spec!r} is not a PEP 508 requirement: {str(exc).splitlines()[0]}")
    for i, spec in enumerate(fields.get("conda", ())):
        if not CONDA_SPEC_RE.match(spec.strip()):
            check.error(key + ("conda", i), f"{spec!r} is not a conda match spec (write e.g. \"numpy >=1.26\")")
    for i, url in enumerate(fields.get("indexes", ())):
        if not URL_RE.match(url):
            check.error(key + ("indexes", i), f"{url!r} is not an index URL (http, https or file)")
    for i, channel in enumerate(fields.get("channels", ())):
        if not channel.strip() or " " in channel.strip():
            check.error(key + ("channels", i), f"{channel!r} is not a channel name or URL")
    for i, platform in enumerate(fields.get("platforms", ())):
        if platform not in PLATFORMS:
            from repropack.manifest.validate import suggest

            check.error(key + ("platforms", i), f"{platform!r} is not a conda platform",
                        hint=suggest(platform, PLATFORMS) or f"one of {', '.join(PLATFORMS)}")


def mirrors(check: Checker, data: dict[str, Any]) -> dict[str, str]:
    if "channels" not in data:
        return {}
    table = check.table(data["channels"], ("channels",))
    check.keys(table, ("mirrors",), ("channels",))
    out = {}
    key: KeyPath = ("channels", "mirrors")
    for name, url in check.table(table.get("mirrors", {}), key).items():
        if check.expect(url, str, key + (name,)):
            if URL_RE.match(url):
                out[name] = url
            else:
                check.error(key + (name,), f"{url!r} is not a channel URL (http, https or file)")
    return out


def image(check: Checker, data: dict[str, Any]) -> Image:
    key: KeyPath = ("image",)
    table = check.table(data.get("image", {}), key)
    check.keys(table, IMAGE_KEYS, key)
    workdir = check.string(table, "workdir", key)
    if workdir is not None and not workdir.startswith("/"):
        check.error(key + ("workdir",), f"{workdir!r} must be an absolute path inside the image")
        workdir = None
    return Image(
        base=check.string(table, "base", key),
        name=check.string(table, "name", key),
        workdir=workdir or "/work",
        user=check.string(table, "user", key),
    )


def data_items(check: Checker, data: dict[str, Any]) -> dict[str, DataItem]:
    out = {}
    for name, value in check.table(data.get("data", {}), ("data",)).items():
        key: KeyPath = ("data", name)
        table = check.table(value, key)
        check.keys(table, DATA_KEYS, key)
        url, path = check.string(table, "url", key), check.string(table, "path", key)
        sha = check.string(table, "sha256", key, required=True) or ""
        sha = sha.removeprefix("sha256:").lower()
        if "sha256" in table and isinstance(table["sha256"], str) and not SHA256_RE.match(sha):
            check.error(key + ("sha256",), "must be 64 hexadecimal digits (the file's sha256)")
        if url is not None and not URL_RE.match(url):
            check.error(key + ("url",), f"{url!r} is not a URL (http, https or file)")
        if path is None and url is not None:
            path = "data/" + (url.rstrip("/").rsplit("/", 1)[-1] or name)
        if path is None:
            check.error(key, "needs a url, a path, or both")
            continue
        problem = path_problem(path) or protected_problem(normalize_path(path))
        if problem:  # a fetch writes this path: it may not replace what repropack owns
            check.error(key + ("path",), f"{path!r} {problem}")
        out[name] = DataItem(name=name, path=normalize_path(path), sha256=sha, url=url)
    return out


def params(check: Checker, data: dict[str, Any], positions_raw) -> tuple[dict[str, Any], dict[str, str]]:
    """Defaults and how each renders in a command: numbers as written in the file."""
    values: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for name, value in check.table(data.get("params", {}), ("params",)).items():
        key: KeyPath = ("params", name)
        if not IDENTIFIER_RE.match(name):
            check.error(key, f"{name!r} is not a valid parameter name (letters, digits and '_')")
            continue
        if isinstance(value, dict):
            check.keys(value, PARAM_KEYS, key)
            check.string(value, "description", key)
            if "default" not in value:
                check.error(key, f"parameter {name!r} has no default", hint=f"add  default = ...  to params.{name}")
                continue
            value, key = value["default"], key + ("default",)
        if isinstance(value, (list, dict)) or not isinstance(value, (str, int, float, bool)):
            check.error(key, f"a parameter is a string, number or boolean, found {type_name(value)} ({shown(value)})")
            continue
        values[name] = value
        texts[name] = scalar_text(value, positions_raw(key) if isinstance(value, float) else None)
    return values, texts


def scalar_text(value: Any, raw: str | None) -> str:
    """How a TOML scalar renders: floats keep the spelling of the file (1.50 stays 1.50)."""
    if isinstance(value, float) and raw is not None and re.fullmatch(r"[+-]?[0-9_]+(\.[0-9_]+)?([eE][+-]?\d+)?", raw):
        return raw.replace("_", "")
    return value_text(value)


def profiles(check: Checker, data: dict[str, Any]) -> dict[str, Profile]:
    out = {}
    for name, value in check.table(data.get("profiles", {}), ("profiles",)).items():
        key: KeyPath = ("profiles", name)
        if not NAME_RE.match(name):
            check.error(key, f"{name!r} is not a valid profile name (letters, digits, '_' and '-')")
        out[name] = profile(check, name, check.table(value, key), key)
    return out


def _env_names(check: Checker, table: dict[str, Any], option: str, key: KeyPath) -> tuple[str, ...]:
    names = check.strings(table, option, key)
    for i, var in enumerate(names):
        if not ENV_VAR_RE.match(var):
            check.error(key + (option, i), f"{var!r} is not an environment variable name")
        elif var in names[:i]:
            check.error(key + (option, i), f"{var!r} is listed twice")
    return names


def _pack(check: Checker, table: dict[str, Any], key: KeyPath) -> int | str | None:
    """``pack``: instances per array element (an integer), or a duration each element is filled up to
    with its members' declared times (``"10m"``, kept as ``"600s"``)."""
    if "pack" not in table:
        return None
    value = table["pack"]
    if not check.expect(value, (int, str), key + ("pack",), "an integer (instances per element) or a duration"):
        return None
    if isinstance(value, int):
        if value < 1:
            check.error(key + ("pack",), f"must be at least 1, found {value}")
            return None
        return value
    try:
        seconds = parse_seconds(value)
    except UnitError as exc:
        check.error(key + ("pack",), str(exc))
        return None
    return f"{seconds}s"


def profile(check: Checker, name: str, table: dict[str, Any], key: KeyPath) -> Profile:
    backend = check.string(table, "backend", key) or "local"
    entry = registry.get(backend)
    if entry is None:
        close = registry.nearest(backend)
        guess = f"did you mean {close!r}? " if close else ""
        check.error(key + ("backend",), f"unknown backend {backend!r} ({guess}one of {', '.join(registry.names())})")
    entries = [e for e in map(registry.get, registry.names()) if e is not None]
    if entry is None:  # its options cannot be told apart from a misspelt backend's: any known one passes
        options = tuple(opt for e in entries for opt in e.options)
        backend, entry = "local", registry.get("local")
        assert entry is not None
    else:
        options = entry.options
    other = {opt: e.name for e in entries if e.name != backend for opt in e.options if opt not in options}
    for option in table:
        if option in other and option not in options:
            check.error(key + (option,), f"{option!r} applies to backend {other[option]!r}, not {backend!r}")
    check.keys({k: v for k, v in table.items() if k not in other}, PROFILE_KEYS + options, key)
    runtimes = entry.runtimes
    runtime = check.string(table, "runtime", key) or (runtimes[0] if runtimes else "host")
    if runtime not in RUNTIMES:
        check.error(key + ("runtime",), f"unknown runtime {runtime!r} (one of {', '.join(RUNTIMES)})")
        runtime = "host"
    elif runtimes and runtime not in runtimes:
        check.error(key + ("runtime",),
                    f"backend {backend!r} runs containers: runtime must be {' or '.join(map(repr, runtimes))}")
    memory = None
    if "memory" in table and check.expect(table["memory"], str, key + ("memory",)):
        try:
            memory = parse_bytes(table["memory"])
        except UnitError as exc:
            check.error(key + ("memory",), str(exc))
    env = _env_names(check, table, "env", key)
    env_keyed = _env_names(check, table, "env-keyed", key)
    opts: dict[str, Any] = {}
    for option in options:
        if option == "sbatch-args":
            opts[option] = check.strings(table, option, key) if option in table else None
        elif option == "array-throttle":
            opts[option] = check.integer(table, option, key, minimum=1)
        elif option == "pack":
            opts[option] = _pack(check, table, key)
        elif option == "cost":  # aws-batch's price table, checked by the backend (backends/batch/settings.py)
            opts[option] = table.get(option)
            if option in table and not isinstance(table[option], dict):
                check.error(key + (option,), "'cost' must be a table such as { vcpu-hour = 0.04, gb-hour = 0.004 }")
        else:
            opts[option] = check.string(table, option, key)
    for option in entry.required:
        if not opts.get(option):
            check.error(key, f"backend {backend!r} needs {option!r} in the profile")
    return Profile(
        name=name,
        backend=backend,  # type: ignore[arg-type]
        runtime=runtime,  # type: ignore[arg-type]
        apptainer_flags=check.strings(table, "apptainer-flags", key),
        docker_flags=check.strings(table, "docker-flags", key),
        cpus=check.integer(table, "cpus", key, minimum=1),
        memory=memory,
        max_jobs=check.integer(table, "max-jobs", key, minimum=1),
        env=tuple(dict.fromkeys(env + env_keyed)),  # env-keyed variables are passed too
        env_keyed=env_keyed,
        options=MappingProxyType({k: v for k, v in opts.items() if v is not None}),
        alerts=_alerts(check, table["alerts"], key + ("alerts",)) if "alerts" in table else None,
    )


def _alerts(check: Checker, value: Any, key: KeyPath) -> Any:
    from repropack.manifest.alerts import alerts

    return alerts(check, value, key)


def causes(check: Checker, data: dict[str, Any]) -> tuple[CausePattern, ...]:
    """``[[causes]]``: the project's own log signatures (pattern, cause, fix), each pattern compiled once here."""
    if "causes" not in data:
        return ()
    entries = data["causes"]
    if not check.expect(entries, list, ("causes",), "an array of tables ([[causes]])"):
        return ()
    out = []
    for i, value in enumerate(entries):
        key: KeyPath = ("causes", i)
        table = check.table(value, key)
        check.keys(table, CAUSE_KEYS, key)
        pattern = check.string(table, "pattern", key, required=True)
        cause = check.string(table, "cause", key, required=True)
        fix = check.string(table, "fix", key)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                check.error(key + ("pattern",), f"{pattern!r} is not a regular expression: {exc}")
                continue
            if not pattern.strip() or re.search(pattern, "") is not None:
                check.error(key + ("pattern",), f"{pattern!r} matches every line (an empty match)",
                            hint="write the text the failing tool prints, e.g. \"license server .* unavailable\"")
                continue
        if cause is not None and not cause.strip():
            check.error(key + ("cause",), "is empty: name the cause in a few words")
            continue
        if pattern and cause:
            out.append(CausePattern(pattern=pattern, cause=cause.strip(), fix=fix))
    return tuple(out)


COMPARE_RULES = ("exact", "exists", "ignore")


def compare(check: Checker, data: dict[str, Any]) -> tuple[CompareRule, ...]:
    """``[compare]``: how `repropack rerun` compares outputs that can never be byte-identical.

    Each key is a glob over project paths; the value is "exact", "exists", "ignore", or
    ``{ ignore-lines = "REGEX" }`` (lines matching are dropped from both texts before comparing).
    """
    if "compare" not in data:
        return ()
    out = []
    for pattern, value in check.table(data["compare"], ("compare",)).items():
        key: KeyPath = ("compare", pattern)
        problem = path_problem(pattern.replace("*", "x").replace("?", "x"))
        if problem:
            check.error(key, f"{pattern!r} {problem}")
            continue
        if isinstance(value, str):
            if value not in COMPARE_RULES:
                check.error(key, f"{value!r} is not a rule (one of {', '.join(COMPARE_RULES)}, or {{ ignore-lines = REGEX }})")
                continue
            out.append(CompareRule(pattern, value))
            continue
        table = check.table(value, key)
        check.keys(table, ("ignore-lines",), key)
        regex = check.string(table, "ignore-lines", key, required=True)
        if regex is None:
            continue
        try:
            re.compile(regex)
        except re.error as exc:
            check.error(key + ("ignore-lines",), f"{regex!r} is not a regular expression: {exc}")
            continue
        out.append(CompareRule(pattern, "ignore-lines", regex))
    return tuple(out)
