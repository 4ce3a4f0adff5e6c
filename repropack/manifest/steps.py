"""Validation of one ``[[steps]]`` table into a :class:`Step`.

Checks everything that one step can get wrong on its own: keys and types, the
command's placeholders, path patterns, foreach rows and resources. References
between steps (needs, gathers, producers, cycles) are checked in ``graph``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from repropack.manifest import placeholders as ph
from repropack.manifest.model import FileSpec, Foreach, Resources, Step
from repropack.manifest.positions import KeyPath
from repropack.manifest.sections import SHA256_RE, scalar_text
from repropack.manifest.stepfiles import check_file_placeholders, check_foreach_values
from repropack.manifest.units import UnitError, parse_memory, parse_time
from repropack.manifest.validate import NAME_RE, Checker, normalize_path, path_problem, shown, suggest, type_name

STEP_KEYS = (
    "name", "run", "environment", "foreach", "inputs", "outputs", "sources", "needs", "resources", "retries",
    "profile", "expect", "use", "with", "prefix",
)
USE_KEYS = ("name", "use", "with", "prefix", "needs", "profile")
RESOURCE_KEYS = ("cpus", "memory", "time", "gpus")
RESERVED_KEYS = ("inputs", "outputs", "params", "resources", "attempt", "name")
MODULE_RESERVED = ("module", "prefix")


@dataclass
class Scope:
    """Where a step is declared: the manifest itself, or a module used under a name."""

    params: dict[str, Any]  # every parameter a placeholder may name (module ones namespaced)
    raw: Callable[[KeyPath], str | None]  # number spelling, from the file's positions
    namespace: str | None = None  # "align": steps become "align.NAME"
    prefix: str | None = None  # where the module's outputs go
    module_dir: str | None = None  # project-relative folder of the module's files
    param_prefix: str = ""  # "align." for a module's own parameters
    env_prefix: str | None = None  # module environments are named "<module>.<env>"


def parse_step(check: Checker, table: dict[str, Any], key: KeyPath, scope: Scope) -> Step | None:
    """The step (None without a name); problems are recorded in ``check``."""
    for only_with_use in ("with", "prefix"):
        if only_with_use in table:
            check.error(key + (only_with_use,), f"{only_with_use!r} goes with 'use' (a step that runs a module)")
    plain = {k: v for k, v in table.items() if k not in ("with", "prefix")}
    check.keys(plain, [k for k in STEP_KEYS if k not in ("use", "with", "prefix")], key)
    name = check.string(table, "name", key, required=True)
    if name is not None and not NAME_RE.match(name):
        check.error(key + ("name",), f"{name!r} is not a valid step name (letters, digits, '_' and '-')")
    foreach = _foreach(check, table.get("foreach"), key + ("foreach",), scope)
    inputs, inputs_named = _files(check, table, "inputs", key, scope)
    outputs, outputs_named = _files(check, table, "outputs", key, scope)
    run = check.string(table, "run", key, required=True)
    if run is not None:
        run = _command(check, run, key + ("run",), scope, foreach, inputs, outputs, inputs_named, outputs_named)
    sources = tuple(_pattern(check, s, key + ("sources", i), scope) for i, s in
                    enumerate(check.strings(table, "sources", key)))
    check_file_placeholders(check, key, foreach, inputs, outputs, sources, scope)
    check_foreach_values(check, key, foreach, inputs + outputs, sources)
    environment = check.string(table, "environment", key)
    if environment is not None and scope.env_prefix is not None:
        environment = scope.env_prefix + environment
    # Every field is checked even after a problem, so that `repropack check` lists them all.
    resources = _resources(check, table.get("resources", {}), key + ("resources",))
    expect = _expect(check, table.get("expect", {}), key + ("expect",))
    retries = check.integer(table, "retries", key) or 0
    profile = check.string(table, "profile", key)
    needs = tuple((f"{scope.namespace}.{n}" if scope.namespace else n) for n in check.strings(table, "needs", key))
    if name is None:
        return None
    return Step(
        name=f"{scope.namespace}.{name}" if scope.namespace else name,
        run=run or "",
        environment=environment,
        foreach=foreach,
        inputs=inputs,
        outputs=outputs,
        inputs_named=inputs_named,
        outputs_named=outputs_named,
        sources=sources,
        sources_declared="sources" in table,
        needs=needs,
        resources=resources,
        retries=retries,
        profile=profile,
        expect=expect,
        module=scope.namespace,
        key=key,
    )


def _foreach(check: Checker, value: Any, key: KeyPath, scope: Scope) -> Foreach:
    if value is None:
        return Foreach()
    if isinstance(value, dict):
        if not value:
            check.error(key, "is empty: a step must run at least once")
            return Foreach()
        keys = tuple(value)
        columns = []
        for name, values in value.items():
            if not check.expect(values, list, key + (name,), "an array of values"):
                return Foreach()
            if not values:
                check.error(key + (name,), "is empty: a step must run at least once")
                return Foreach()
            columns.append([_value_text(check, v, key + (name, i), scope) for i, v in enumerate(values)])
        rows = tuple(itertools.product(*columns)) if len(columns) > 1 else tuple((v,) for v in columns[0])
    elif isinstance(value, list):
        if not value:
            check.error(key, "is empty: a step must run at least once")
            return Foreach()
        if not check.expect(value[0], dict, key + (0,), "a table of values (one row)"):
            return Foreach()
        keys = tuple(value[0])
        rows_list = []
        for i, row in enumerate(value):
            if not check.expect(row, dict, key + (i,), "a table of values (one row)"):
                continue
            if tuple(row) != keys and set(row) != set(keys):
                check.error(key + (i,), f"row has keys {sorted(row)}; every row needs exactly {sorted(keys)}")
                continue
            rows_list.append(tuple(_value_text(check, row[k], key + (i, k), scope) for k in keys))
        rows = tuple(rows_list)
    else:
        check.expect(value, (dict, list), key, "a table of arrays, or an array of tables (rows)")
        return Foreach()
    for name in keys:
        if name in RESERVED_KEYS or (scope.namespace and name in MODULE_RESERVED):
            check.error(key + (name,), f"foreach key {name!r} is a reserved name; choose another")
        elif not ph.IDENTIFIER_RE.match(name):
            check.error(key + (name,), f"foreach key {name!r} is not a valid name (letters, digits and '_')")
    if len(set(rows)) != len(rows):
        seen: dict[tuple[str, ...], int] = {}
        for i, row in enumerate(rows):
            if row in seen:
                shown_row = ", ".join(f"{k}={v}" for k, v in zip(keys, row))
                check.error(key, f"the row {shown_row} appears twice; each instance must be distinct")
                break
            seen[row] = i
    return Foreach(keys=keys, rows=rows, explicit=isinstance(value, list))


def _value_text(check: Checker, value: Any, key: KeyPath, scope: Scope) -> str:
    if type(value) is str:
        return value
    if isinstance(value, float):
        return scalar_text(value, scope.raw(key))
    if isinstance(value, (int, bool)):
        return scalar_text(value, None)
    check.error(key, f"a foreach value is a string or number, found {type_name(value)} ({shown(value)})")
    return ""


def _files(check: Checker, table: dict[str, Any], kind: str, key: KeyPath, scope: Scope) -> tuple[tuple[FileSpec, ...], bool]:
    if kind not in table:
        return (), False
    value, key = table[kind], key + (kind,)
    out: list[FileSpec] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += _file_entries(check, item, key + (i,), None, kind, scope)
        return tuple(out), False
    if isinstance(value, dict):
        for name, item in value.items():
            if not ph.IDENTIFIER_RE.match(name.replace("-", "_")):
                check.error(key + (name,), f"{name!r} is not a valid {kind} name (letters, digits, '_' and '-')")
            if isinstance(item, list) and kind == "inputs":
                for i, sub in enumerate(item):
                    out += _file_entries(check, sub, key + (name, i), name, kind, scope)
            else:
                out += _file_entries(check, item, key + (name,), name, kind, scope)
        return tuple(out), True
    check.expect(value, (list, dict), key, f"an array of paths, or a table of named {kind}")
    return (), False


def _file_entries(check: Checker, item: Any, key: KeyPath, name: str | None, kind: str, scope: Scope) -> list[FileSpec]:
    pipe = False
    if isinstance(item, dict) and kind == "outputs":
        check.keys(item, ("path", "pipe"), key)
        pipe = bool(check.boolean(item, "pipe", key))
        item = check.string(item, "path", key, required=True)
        if item is None:
            return []
        key = key + ("path",)
    elif not check.expect(item, str, key, "a path" + (" or a table { path, pipe }" if kind == "outputs" else "")):
        return []
    pattern = _pattern(check, item, key, scope)
    return [FileSpec(pattern=pattern, name=name, pipe=pipe)]


def _pattern(check: Checker, text: str, key: KeyPath, scope: Scope) -> str:
    """A path pattern, made project-relative and normalized; module placeholders filled in."""
    try:
        segments = ph.parse(text)
    except ph.PlaceholderError as exc:
        check.error(key, f"{text!r}: {exc}")
        return text
    segments = _rewrite(segments, scope)
    text = ph.unparse(segments)
    literal = "".join(s if isinstance(s, str) else "x" for s in segments)
    problem = path_problem(literal)
    if problem:
        check.error(key, f"{text!r} {problem}")
    elif text.endswith("/"):
        check.error(key, f"{text!r} names a folder; declare files")
    elif not normalize_path(text):
        check.error(key, f"{text!r} is the project folder itself; name a file or folder inside it")
    return normalize_path(text)


def _rewrite(segments: tuple[ph.Segment, ...], scope: Scope) -> tuple[ph.Segment, ...]:
    """In a module, {prefix} and {module} become paths and {params.x} the namespaced parameter."""
    if scope.namespace is None:
        return segments
    out: list[ph.Segment] = []
    for s in segments:
        if isinstance(s, ph.Placeholder) and s.name == "prefix" and s.attr is None:
            out.append(scope.prefix or "")
        elif isinstance(s, ph.Placeholder) and s.name == "module" and s.attr is None:
            out.append(scope.module_dir or ".")
        elif isinstance(s, ph.Placeholder) and s.name == "params":
            out.append(ph.Placeholder("params", scope.param_prefix + (s.attr or ""), None, s.offset))
        else:
            out.append(s)
    return tuple(out)


def _command(check: Checker, run: str, key: KeyPath, scope: Scope, foreach: Foreach, inputs, outputs,
             inputs_named: bool, outputs_named: bool) -> str | None:
    try:
        segments = _rewrite(ph.parse(run, shell=True), scope)
    except ph.PlaceholderError as exc:
        check.error(key, str(exc), at=(run, exc.offset))
        return None
    for p in ph.placeholders(segments):
        problem = _command_placeholder(p, scope, foreach, inputs, outputs, inputs_named, outputs_named)
        if problem:
            check.error(key, f"placeholder {p.text} {problem[0]}", hint=problem[1], at=(run, p.offset))
    return ph.unparse(segments)


def _command_placeholder(p: ph.Placeholder, scope: Scope, foreach: Foreach, inputs, outputs,
                         inputs_named: bool, outputs_named: bool) -> tuple[str, str | None] | None:
    if p.name in ("inputs", "outputs"):
        files, named = (inputs, inputs_named) if p.name == "inputs" else (outputs, outputs_named)
        if not files:
            return f"has no value: the step declares no {p.name}", None
        if p.attr is not None:
            names = [f.name for f in files]
            if not named:
                return f"has no value: {p.name} is an array, not a table of named {p.name}", None
            if p.attr not in names:
                return f"has no value: no {p.name} named {p.attr!r}", suggest(p.attr, [n for n in names if n])
        return None
    if p.name == "params":
        if p.attr not in scope.params:
            shown_name = (p.attr or "").removeprefix(scope.param_prefix)
            visible = [n.removeprefix(scope.param_prefix) for n in scope.params if n.startswith(scope.param_prefix)]
            return f"has no value: no parameter {shown_name!r} in [params]", suggest(shown_name, visible)
        return None
    if p.name in ("resources", "attempt"):
        return None
    if p.name not in foreach.keys:
        return (f"has no value: {p.name!r} is not a foreach key of this step",
                suggest(p.name, list(foreach.keys) + ["inputs", "outputs", "attempt"]))
    return None


def _resources(check: Checker, value: Any, key: KeyPath) -> Resources:
    table = check.table(value, key)
    check.keys(table, RESOURCE_KEYS, key)
    fields: dict[str, Any] = {}
    cpus = check.integer(table, "cpus", key, minimum=1)
    if cpus is not None:
        fields["cpus"] = cpus
    gpus = check.integer(table, "gpus", key)
    if gpus is not None:
        fields["gpus"] = gpus
    for name, parser, example in (("memory", parse_memory, "4GB"), ("time", parse_time, "1h30m")):
        if name not in table:
            continue
        raw = table[name]
        if not isinstance(raw, str):
            check.error(key + (name,), f"write {name} with a unit, as a string (e.g. \"{example}\"); "
                        f"found {type_name(raw)} ({shown(raw)})")
            continue
        try:
            fields[name] = parser(raw)
        except UnitError as exc:
            check.error(key + (name,), str(exc))
    return Resources(**fields)


def _expect(check: Checker, value: Any, key: KeyPath) -> MappingProxyType:
    out = {}
    for path, digest in check.table(value, key).items():
        here = key + (path,)
        if not check.expect(digest, str, here):
            continue
        hexdigest = digest.removeprefix("sha256:").lower()
        if not SHA256_RE.match(hexdigest):
            check.error(here, f"{digest!r} is not a sha256 digest (write \"sha256:<64 hex digits>\")")
            continue
        problem = path_problem(path)
        if problem:
            check.error(here, f"{path!r} {problem}")
            continue
        out[normalize_path(path)] = "sha256:" + hexdigest
    return MappingProxyType(out)
