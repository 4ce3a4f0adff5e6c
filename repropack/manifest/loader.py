"""``load_manifest``: find, read, parse and validate ``repropack.toml`` into the typed model.

Parsing is the standard library's tomllib (fast); positions for messages come from a
second light pass over the text (``positions``). Every problem is collected, so
``repropack check`` shows them all; :func:`load_manifest` raises them as one
:class:`ManifestErrors`.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

from repropack.errors import ManifestError, ManifestErrors
from repropack.manifest import MANIFEST_NAME, sections
from repropack.manifest.alerts import alerts
from repropack.manifest.graph import link
from repropack.manifest.model import Environment, Manifest, Step, freeze
from repropack.manifest.modules import resolve
from repropack.manifest.positions import Positions
from repropack.manifest.source import parse_toml, read_text
from repropack.manifest.steps import Scope, parse_step
from repropack.manifest.validate import Checker


def find_manifest(directory: str | Path = ".") -> Path:
    """The ``repropack.toml`` of ``directory`` (a path to the file itself is accepted too)."""
    path = Path(directory)
    if path.is_file():
        return path.absolute()
    if not path.exists():
        raise ManifestError(f"no such folder: {path}")
    candidate = path / MANIFEST_NAME
    if not candidate.is_file():
        raise ManifestError(
            f"no {MANIFEST_NAME} in {path.absolute()}", hint="run `repropack init` there, or pass the project folder"
        )
    return candidate.absolute()


def load_manifest(path_or_dir: str | Path = ".") -> Manifest:
    """The validated, immutable manifest; raises :class:`ManifestErrors` listing every problem."""
    manifest, errors = check_manifest(path_or_dir)
    if errors:
        raise ManifestErrors(errors)
    assert manifest is not None
    return manifest


def check_manifest(path_or_dir: str | Path = ".") -> tuple[Manifest | None, list[ManifestError]]:
    """The manifest and every problem found (the manifest is None when there are problems)."""
    try:
        path = find_manifest(path_or_dir)
        text = read_text(path)
        data = parse_toml(text, path)
    except ManifestError as exc:
        return None, [exc]
    positions = Positions(text)
    check = Checker(path, positions)
    manifest = _build(check, data, path, positions)
    if not check.errors:
        _expand(manifest, check)
    if check.errors:
        return None, _sorted(check.errors, path)
    return manifest, []


def _build(check: Checker, data: dict[str, Any], path: Path, positions: Positions) -> Manifest:
    check.keys(data, sections.TOP_KEYS, ())
    requires = sections.requires(check, data)
    project = sections.project(check, data)
    environments = sections.environments(check, data)
    params, texts = sections.params(check, data, positions.raw)
    profiles = sections.profiles(check, data)
    own = frozenset(environments)  # before modules add theirs
    steps, uses, checkers = _steps(check, data, path, params, texts, environments)
    all_positions = {path: positions}
    all_positions.update({p: c.positions for p, c in checkers.items() if c.positions is not None})
    steps = link(steps, uses, environments, profiles, lambda step: checkers.get(step.origin, check), own)
    return Manifest(
        path=path,
        project=project,
        requires_repropack=requires,
        environments=MappingProxyType(environments),
        mirrors=MappingProxyType(sections.mirrors(check, data)),
        image=sections.image(check, data),
        data=MappingProxyType(sections.data_items(check, data)),
        params=MappingProxyType(params),
        steps=tuple(steps),
        profiles=MappingProxyType(profiles),
        causes=sections.causes(check, data),
        compare=sections.compare(check, data),
        alerts=alerts(check, data["alerts"], ("alerts",)) if "alerts" in data else None,
        raw=freeze(data),
        param_texts=MappingProxyType(texts),
        positions=MappingProxyType(all_positions),
    )


def _steps(check: Checker, data: dict[str, Any], path: Path, params: dict[str, Any], texts: dict[str, str],
           environments: dict[str, Environment]) -> tuple[list[Step], dict[str, list[str]], dict[Path, Checker]]:
    """Every step, with modules expanded in place; adds module parameters and environments."""
    raw_steps = data.get("steps", [])
    if not check.expect(raw_steps, list, ("steps",), "an array of tables ([[steps]])"):
        return [], {}, {}
    scope = Scope(params=params, raw=check.positions.raw if check.positions else (lambda key: None))
    steps: list[Step] = []
    uses: dict[str, list[str]] = {}
    checkers: dict[Path, Checker] = {}
    seen: dict[str, int] = {}
    prefixes: dict[str, str] = {}  # a use's output folder -> the use
    header_lines = check.positions.step_lines() if check.positions else []
    if len(header_lines) != len(raw_steps):  # steps written inline: ask the full scan
        header_lines = []
    for i, table in enumerate(raw_steps):
        key = ("steps", i)
        if not check.expect(table, dict, key):
            continue
        name = table.get("name")
        if isinstance(name, str):
            if name in seen:
                check.error(key + ("name",), f"step name {name!r} is used twice",
                            hint=f"the other one is steps[{seen[name]}]")
                continue
            seen[name] = i
        if "use" in table:
            used = resolve(check, table, key, path.parent, params)
            if used is not None and used.prefix in prefixes:
                check.error(key + ("prefix",), f"use {name!r} writes under {used.prefix!r} like use "
                            f"{prefixes[used.prefix]!r}; two uses of a module need different prefixes",
                            hint=f"add  prefix = \"{used.prefix}-{name}\"  or another folder")
                used = None
            if used is None:
                if isinstance(name, str):
                    uses[name] = []  # already reported: a `needs` on it is not a second problem
                continue
            prefixes[used.prefix] = name
            params.update(used.params)
            texts.update(used.texts)
            _add_environments(check, environments, used.environments, key)
            if used.positions is not None:
                module_path, module_positions = used.positions
                checkers.setdefault(module_path, Checker(module_path, module_positions, check.errors))
            uses[name] = [s.name for s in used.steps]
            steps.extend(used.steps)
            continue
        step = parse_step(check, table, key, scope)
        if step is not None:
            if header_lines:
                line: int | None = header_lines[i]
            else:
                where = check.positions.find(key) if check.positions else None
                line = where[0] if where else None
            steps.append(_with_line(step, line))
    return steps, uses, checkers


def _with_line(step: Step, line: int | None) -> Step:
    import dataclasses

    return dataclasses.replace(step, line=line)


def _add_environments(check: Checker, environments: dict[str, Environment], new: dict[str, Environment], key) -> None:
    for name, env in new.items():
        if name in environments and environments[name] != env:
            check.error(key + ("use",), f"two different modules define the environment {name!r}",
                        hint="give one module another [module] name")
        environments.setdefault(name, env)


def _expand(manifest: Manifest, check: Checker) -> None:
    """Expand the DAG once so producers, gathers and cycles are checked at load time."""
    from repropack.manifest.dag import expand

    try:
        expand(manifest, check_only=True)
    except ManifestErrors as exc:
        check.errors.extend(exc.errors)
    except ManifestError as exc:
        check.errors.append(exc)


def _sorted(errors: list[ManifestError], manifest: Path) -> list[ManifestError]:
    """The manifest's own problems first, then each module's, in file order."""

    def order(error: ManifestError) -> tuple:
        return (error.path != manifest, str(error.path or ""), error.line or 0, error.column or 0)

    return sorted(errors, key=order)
