"""``repropack init``: a first manifest, optionally from environment.yml, requirements.txt or pyproject.toml.

Written with tomlkit so that the file carries explanatory comments, and validated by
the real loader before it is moved into place: ``init`` never leaves a manifest that
``check`` would refuse, nor a half-written one.
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.errors import ManifestError, UsageError
from repropack.manifest import MANIFEST_NAME

_CONDA_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)\s*=\s*([^=<>!~\s][^=\s]*)(?:\s*=\s*(\S+))?$")  # name=1.2[=build]
_CONDA_OP = re.compile(r"^([A-Za-z0-9_.\-]+)\s*((?:==|>=|<=|!=|~=|>|<)\s*\S.*)$")


@dataclass
class Draft:
    """What ``init`` learned from the source file."""

    name: str
    python: str | None = None
    channels: list[str] = field(default_factory=list)
    conda: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    description: str | None = None
    notes: list[str] = field(default_factory=list)  # what could not be carried over


def project_name(text: str) -> str:
    """A valid project name from a folder or package name."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    return name or "analysis"


def draft_from(source: Path | None, name: str) -> Draft:
    if source is None:
        return Draft(name=name, python=f"{sys.version_info.major}.{sys.version_info.minor}")
    suffix = source.name.lower()
    if suffix.endswith((".yml", ".yaml")):
        return _from_environment_yml(source, name)
    if suffix.endswith(".toml"):
        return _from_pyproject(source, name)
    if suffix.endswith(".txt") or suffix.endswith(".in"):
        return _from_requirements(source, name)
    raise UsageError(f"--from {source}: expected environment.yml, requirements.txt or pyproject.toml")


def _from_environment_yml(source: Path, name: str) -> Draft:
    import yaml

    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise UsageError(f"{source}{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a conda environment file (a mapping with dependencies)")
    draft = Draft(name=name)
    draft.channels = [str(c) for c in data.get("channels") or [] if c != "defaults"]
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict):
            draft.pip += [str(p) for p in dep.get("pip") or [] if not str(p).startswith("-")]
            continue
        spec = _conda_spec(str(dep))
        head = spec.split()[0] if spec.split() else ""
        if head == "python":
            version = re.search(r"(\d+\.\d+)", spec)
            draft.python = version.group(1) if version else None
        elif head == "pip":
            continue
        else:
            draft.conda.append(spec)
    if not draft.channels and draft.conda:
        draft.channels = ["conda-forge"]
    return draft


def _conda_spec(dep: str) -> str:
    """conda-env's ``numpy=1.26`` means ``numpy 1.26.*``; write it as a match spec."""
    dep = dep.strip()
    pinned = _CONDA_PIN.match(dep)
    if pinned:
        package, version, build = pinned.groups()
        version = version if version.endswith("*") or "," in version else f"{version}.*"
        return f"{package} {version}" + (f" {build}" if build else "")
    op = _CONDA_OP.match(dep)
    if op:
        return f"{op.group(1)} {op.group(2).replace(' ', '')}"
    return dep


def _from_requirements(source: Path, name: str) -> Draft:
    draft = Draft(name=name, python=f"{sys.version_info.major}.{sys.version_info.minor}")
    for number, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("--index-url", "-i ", "--extra-index-url")):
            draft.indexes.append(line.split("=", 1)[1].strip() if "=" in line else line.split()[-1])
        elif line.startswith("-"):
            draft.notes.append(f"{source.name}:{number}: {line!r} was not carried over")
        else:
            draft.pip.append(line)
    return draft


def _from_pyproject(source: Path, name: str) -> Draft:
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from None
    project = data.get("project") or {}
    draft = Draft(name=project_name(project["name"]) if project.get("name") else name)
    draft.description = project.get("description")
    draft.pip = [str(d) for d in project.get("dependencies") or []]
    requires = str(project.get("requires-python") or "")
    version = re.search(r"(\d+\.\d+)", requires)
    draft.python = version.group(1) if version else f"{sys.version_info.major}.{sys.version_info.minor}"
    return draft


def render(draft: Draft) -> str:
    """The manifest text, with comments that explain each section."""
    import tomlkit

    from repropack import __version__

    doc = tomlkit.document()
    doc.add(tomlkit.comment("repropack manifest: see docs/manifest.md for every key."))
    major_minor = ".".join(__version__.split(".")[:2])
    doc.add("requires-repropack", f">={major_minor}")
    doc.add(tomlkit.nl())
    project = tomlkit.table()
    project.add("name", draft.name)
    if draft.description:
        project.add("description", draft.description)
    doc.add("project", project)
    environments = tomlkit.table(is_super_table=True)
    env = tomlkit.table()
    env.comment("the software every step runs with; `repropack lock` pins it")
    if draft.python:
        env.add("python", draft.python)
    for key in ("channels", "conda", "pip", "indexes"):
        values = getattr(draft, key)
        if values:
            env.add(key, _array(values))
    environments.add("default", env)
    doc.add("environments", environments)
    doc.add(tomlkit.nl())
    for line in _STEP_EXAMPLE.splitlines():
        doc.add(tomlkit.comment(line))
    for note in draft.notes:
        doc.add(tomlkit.comment(f"note: {note}"))
    return tomlkit.dumps(doc)


def _array(values: list[str]) -> Any:
    import tomlkit

    array = tomlkit.array()
    array.extend(values)
    if len(values) > 3:
        array.multiline(True)
    return array


_STEP_EXAMPLE = """\
A step runs a command; {inputs} and {outputs} are quoted by repropack. For example:
[[steps]]
name = "count"
run = "python scripts/count.py {inputs} > {outputs}"
foreach = { sample = ["a", "b"] }
inputs = ["data/{sample}.txt"]
outputs = ["results/{sample}.count"]"""


def write_initial(directory: Path, *, source: Path | None = None, name: str | None = None) -> Path:
    """Write ``repropack.toml`` in ``directory``; refuses to replace one."""
    from repropack.manifest.edit import write_validated

    target = directory / MANIFEST_NAME
    if target.exists():
        raise UsageError(f"{target} already exists; repropack init never overwrites a manifest")
    if not directory.is_dir():
        raise UsageError(f"no such folder: {directory}")
    if name is not None and project_name(name) != name:
        raise UsageError(f"--name {name!r}: a project name uses lowercase letters, digits, '_' and '-'",
                         hint=f"e.g. {project_name(name)!r}")
    draft = draft_from(source, name or project_name(directory.resolve().name))
    if name is not None:
        draft.name = name
    try:
        return write_validated(target, render(draft), exclusive=True)
    except ManifestError as exc:
        origin = f" from {source}" if source else ""
        raise ManifestError(f"the manifest made{origin} is not valid: {exc.reason}", path=source or target,
                            hint=exc.hint) from None
