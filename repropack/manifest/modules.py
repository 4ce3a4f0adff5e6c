"""Reusable modules: a step with ``use`` runs the steps of a module file ``with`` parameters.

A module is a TOML file, or a folder holding ``module.toml`` beside its own scripts.
Used under the name ``align``, its step ``index`` becomes ``align.index``, its parameter
``ref`` becomes the project parameter ``align.ref`` (so ``--param align.ref=...`` works),
its outputs go under ``{prefix}`` (default: the use name) and its environments are
named ``<module>.<env>``, so the same module used twice never collides with itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any

from repropack.errors import ManifestError
from repropack.manifest import sections
from repropack.manifest.model import Environment, Step
from repropack.manifest.positions import KeyPath, Positions
from repropack.manifest.source import parse_toml, read_text
from repropack.manifest.stepfiles import spec_key
from repropack.manifest.steps import USE_KEYS, Scope, parse_step
from repropack.manifest.validate import NAME_RE, Checker, normalize_path, path_problem, shown, suggest, type_name

MODULE_FILE = "module.toml"
MODULE_TOP_KEYS = ("module", "requires-repropack", "params", "environments", "steps")
MODULE_KEYS = ("name", "description", "version")
_SAFE_PATH = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")


@dataclasses.dataclass
class Used:
    steps: list[Step]
    params: dict[str, Any]
    texts: dict[str, str]
    environments: dict[str, Environment]
    positions: tuple[Path, Positions] | None
    prefix: str = ""  # the folder every output of this use starts with


def resolve(check: Checker, table: dict[str, Any], key: KeyPath, root: Path, project_params: dict[str, Any]) -> Used | None:
    """The steps a ``use`` step stands for, or None after recording why not."""
    check.keys(table, USE_KEYS, key, " in a step with 'use' (set it inside the module)")
    name = check.string(table, "name", key, required=True)
    if name is not None and not NAME_RE.match(name):
        check.error(key + ("name",), f"{name!r} is not a valid step name (letters, digits, '_' and '-')")
        return None
    use = check.string(table, "use", key)
    prefix = check.string(table, "prefix", key) if "prefix" in table else name
    if name is None or use is None or prefix is None:
        return None
    module_path = _locate(check, use, key + ("use",), root)
    if module_path is None:
        return None
    if not _safe(prefix) or path_problem(prefix) or not normalize_path(prefix).rstrip("/"):
        check.error(key + ("prefix",), f"{prefix!r} must be a plain folder inside the project, not the project "
                    "folder itself (letters, digits, '_', '-', '.', '/')")
        return None
    prefix = normalize_path(prefix).rstrip("/")  # "results/a/" and "./results/a" are the folder results/a
    try:
        text = read_text(module_path, "module")
        data = parse_toml(text, module_path, "module")
    except ManifestError as exc:
        check.errors.append(exc)
        return None
    positions = Positions(text)
    mcheck = Checker(module_path, positions, check.errors)
    errors_before = len(check.errors)
    mcheck.keys(data, MODULE_TOP_KEYS, ())
    sections.requires(mcheck, data)
    meta = mcheck.table(data.get("module", {}), ("module",))
    mcheck.keys(meta, MODULE_KEYS, ("module",))
    module_name = mcheck.string(meta, "name", ("module",)) or (
        module_path.parent.name if module_path.name == MODULE_FILE else module_path.stem)
    params, texts = _params(check, mcheck, data, table.get("with", {}), key, name)
    if len(check.errors) > errors_before:
        return None  # the module's steps would only repeat that a parameter has no value
    envs = {f"{module_name}.{env}": dataclasses.replace(e, name=f"{module_name}.{env}")
            for env, e in sections.environments(mcheck, data).items()}
    module_dir = module_path.parent.relative_to(root).as_posix()
    if not _safe(module_dir):
        check.error(key + ("use",), f"the module's folder {module_dir!r} may only hold letters, digits, '_', '-', '.' and '/'")
        return None
    scope = Scope(
        params={**project_params, **params}, raw=positions.raw, namespace=name, prefix=prefix,
        module_dir=module_dir or ".", param_prefix=name + ".", env_prefix=module_name + "." if envs else None,
    )
    steps = _steps(mcheck, data, scope, table, check, key, use, module_path, envs)
    if len(check.errors) > errors_before:
        return None
    return Used(steps, params, texts, envs, (module_path, positions), scope.prefix or "")


def _locate(check: Checker, use: str, key: KeyPath, root: Path) -> Path | None:
    problem = path_problem(use)
    if problem:
        check.error(key, f"{use!r} {problem}")
        return None
    path = root / normalize_path(use)
    if path.is_dir():
        path = path / MODULE_FILE
    if not path.is_file():
        check.error(key, f"no module at {use!r} (a .toml file, or a folder holding {MODULE_FILE})")
        return None
    resolved, real_root = path.resolve(), root.resolve()
    if not resolved.is_relative_to(real_root):
        check.error(key, f"{use!r} leads outside the project (through a symbolic link)")
        return None
    return real_root / resolved.relative_to(real_root)


def _safe(path: str) -> bool:
    return set(path) <= _SAFE_PATH


def _params(check: Checker, mcheck: Checker, data: dict[str, Any], given: Any, key: KeyPath, name: str) -> tuple[dict, dict]:
    """The module's parameters under ``<name>.``: each from ``with``, else its default."""
    declared: dict[str, Any] = {}
    texts: dict[str, str] = {}
    required: list[str] = []
    for pname, value in mcheck.table(data.get("params", {}), ("params",)).items():
        if isinstance(value, dict) and "default" not in value:
            mcheck.keys(value, sections.PARAM_KEYS, ("params", pname))
            required.append(pname)
    sub = {"params": {k: v for k, v in data.get("params", {}).items() if k not in required}} \
        if isinstance(data.get("params"), dict) else {}
    defaults, default_texts = sections.params(mcheck, sub, mcheck.positions.raw if mcheck.positions else lambda k: None)
    with_table = check.table(given, key + ("with",))
    allowed = list(defaults) + required
    for pname, value in with_table.items():
        here = key + ("with", pname)
        if pname not in allowed:
            check.error(here, f"the module has no parameter {pname!r}", hint=suggest(pname, allowed))
            continue
        if isinstance(value, (list, dict)) or not isinstance(value, (str, int, float, bool)):
            check.error(here, f"a parameter is a string, number or boolean, found {type_name(value)} ({shown(value)})")
            continue
        if pname in defaults and not _same_kind(value, defaults[pname]):
            check.error(here, f"the module's parameter {pname!r} is {type_name(defaults[pname])} "
                        f"(default {default_texts[pname]}), found {type_name(value)} ({shown(value)})")
            continue
        declared[pname] = value
        texts[pname] = sections.scalar_text(value, check.positions.raw(here) if check.positions else None)
    for pname in required:
        if pname not in declared:
            check.error(key + ("with",), f"the module's parameter {pname!r} has no default: give it in 'with'")
    for pname, value in defaults.items():
        if pname not in declared:
            declared[pname], texts[pname] = value, default_texts[pname]
    return ({f"{name}.{k}": v for k, v in declared.items()}, {f"{name}.{k}": v for k, v in texts.items()})


def _same_kind(value: Any, default: Any) -> bool:
    """``with`` gives a value of the default's type (an integer where a float is expected too), as
    ``--param`` does: a module's script never receives ``eight`` where its default says 10."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return type(value) is type(default)


def _steps(mcheck: Checker, data: dict[str, Any], scope: Scope, table: dict[str, Any], check: Checker,
           key: KeyPath, use: str, module_path: Path, envs: dict[str, Environment]) -> list[Step]:
    raw_steps = data.get("steps", [])
    if not mcheck.expect(raw_steps, list, ("steps",), "an array of tables ([[steps]])") or not raw_steps:
        mcheck.error(("steps",) if "steps" in data else (), "a module needs at least one [[steps]]")
        return []
    outer_needs = check.strings(table, "needs", key)
    profile = check.string(table, "profile", key)
    local_names = {s["name"] for s in raw_steps if isinstance(s, dict) and isinstance(s.get("name"), str)}
    out = []
    for i, raw in enumerate(raw_steps):
        here: KeyPath = ("steps", i)
        if not mcheck.expect(raw, dict, here):
            continue
        if "use" in raw:
            mcheck.error(here + ("use",), "a module cannot use another module")
            continue
        for j, need in enumerate(raw.get("needs", []) if isinstance(raw.get("needs"), list) else []):
            if isinstance(need, str) and need not in local_names:
                mcheck.error(here + ("needs", j), f"no step {need!r} in this module",
                             hint=suggest(need, [n for n in local_names if isinstance(n, str)]))
        step = parse_step(mcheck, raw, here, scope)
        if step is None:
            continue
        for k, spec in enumerate(step.outputs):
            if not (spec.pattern + "/").startswith((scope.prefix or "") + "/") or spec.pattern == scope.prefix:
                mcheck.error(spec_key(here, "outputs", k, spec),
                             f"{spec.pattern!r}: a module's outputs start with '{{prefix}}/' so that two uses do not collide")
        environment = step.environment
        if environment is None and envs:
            environment = scope.env_prefix + "default" if scope.env_prefix + "default" in envs else next(iter(envs))
        out.append(dataclasses.replace(
            step, environment=environment, needs=tuple(outer_needs) + step.needs, profile=step.profile or profile,
            use=use, with_=MappingProxyType(dict(table.get("with", {}))), origin=module_path,
            line=mcheck.positions.find(here)[0] if mcheck.positions and mcheck.positions.find(here) else None,
        ))
    return out
