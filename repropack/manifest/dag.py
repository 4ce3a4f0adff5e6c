"""Expansion of the manifest into a DAG of step instances (load-time validation uses it too).

:func:`expand` turns the manifest's steps into :class:`~repropack.manifest.instances.Instance`
objects in a :class:`~repropack.manifest.instances.Dag`, in three linear passes: (1) every step's instances and their output paths, indexed
path -> producer; (2) every instance's inputs and dependencies: a bound input is one
dict lookup, a gather one lookup in a group index built once per (input, producer);
(3) a topological order of the steps (a cycle is named), instances emitted step by step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from repropack.errors import ManifestError, ManifestErrors
from repropack.manifest import placeholders as ph
from repropack.manifest.model import EMPTY, Manifest, Step
from repropack.manifest.cmdsources import CommandSources
from repropack.manifest.patterns import Pattern, apply_overrides, instance_id, used_params
from repropack.manifest.positions import KeyPath, format_key
from repropack.manifest.stepfiles import spec_key
from repropack.paths import is_normal, nested, normalize, path_problem, protected_problem
from repropack.manifest.instances import CommandPlan, Dag, Instance


class _StepInfo:
    __slots__ = ("step", "index", "keys", "rows", "ids", "wildcards", "outputs", "patterns", "pipe_specs")

    def __init__(self, step: Step, index: int):
        self.step = step
        self.index = index
        self.keys = step.foreach.keys
        self.rows = step.foreach.rows if step.foreach else ((),)
        order = sorted(range(len(self.keys)), key=lambda i: self.keys[i])
        self.ids = [instance_id(step.name, self.keys, row, order) for row in self.rows]
        self.wildcards = [MappingProxyType(dict(zip(self.keys, row))) for row in self.rows] if self.keys \
            else [MappingProxyType({})]
        self.outputs: list[tuple[str, ...]] = []
        self.patterns: list[Pattern] = []
        self.pipe_specs = {i for i, spec in enumerate(step.outputs) if spec.pipe}


class Expansion:
    def __init__(self, manifest: Manifest, overrides: Mapping[str, str]):
        self.manifest = manifest
        self.values, self.texts = apply_overrides(manifest, overrides)
        self.errors: list[ManifestError] = []
        self.infos = [_StepInfo(step, i) for i, step in enumerate(manifest.steps)]
        self.by_name = {info.step.name: info for info in self.infos}
        self.producers: dict[str, tuple[int, int]] = {}  # path -> (step index, row index)
        self.pipe_readers: dict[str, int] = {}

    def error(self, step: Step, sub: KeyPath, message: str, hint: str | None = None) -> None:
        path = step.origin or self.manifest.path
        positions = self.manifest.positions.get(path)
        where = positions.find(step.key + sub) if positions is not None else None
        line, column = where if where else (step.line, None)
        if step.module is not None:  # the key is the module file's: say which use it is
            message += f" (in step {step.name!r})"
        self.errors.append(ManifestError(message, path=path, key=format_key(step.key + sub) or None,
                                         line=line, column=column, hint=hint))

    def run(self, check_only: bool = False) -> Dag:
        for info in self.infos:
            self._outputs(info)
        self._nested()
        self._expectations()
        resolved = [self._inputs(info) for info in self.infos]
        self._pipes()
        order = self._order([edges for *_, edges in resolved]) if not self.errors else []
        if self.errors:
            raise ManifestErrors(self.errors)
        if check_only:
            return Dag(MappingProxyType({}), MappingProxyType({}))
        instances: dict[str, Instance] = {}
        for index in order:
            info = self.infos[index]
            inputs, named, deps, _ = resolved[index]
            for inst in self._instances(info, inputs, named, deps):
                instances[inst.id] = inst
        producers = {path: self.infos[s].ids[r] for path, (s, r) in self.producers.items()}
        return Dag(MappingProxyType(instances), MappingProxyType(producers))

    # pass 1 -------------------------------------------------------------------------------

    def _outputs(self, info: _StepInfo) -> None:
        step = info.step
        info.patterns = [Pattern(spec.pattern, self.texts) for spec in step.outputs]
        reported: set[int] = set()  # one message per output entry, not one per instance
        for k, pattern in enumerate(info.patterns):
            problem = pattern.normalize and pattern.problem()
            if problem:
                reported.add(k)
                self.error(step, spec_key((), "outputs", k, step.outputs[k]), f"{pattern.shown()} {problem}")
        producers = self.producers
        for r, wildcards in enumerate(info.wildcards):
            paths = tuple(p.render(wildcards) for p in info.patterns)
            info.outputs.append(paths)
            for k, path in enumerate(paths):
                if k in reported:
                    continue
                problem = _output_problem(path)
                if problem:
                    reported.add(k)
                    self.error(step, spec_key((), "outputs", k, step.outputs[k]),
                               _rendered(info.patterns[k], path, info.ids[r], problem))
                    continue
                other = producers.setdefault(path, (info.index, r))
                if other != (info.index, r):
                    reported.add(k)
                    self._duplicate(info, k, path, other)

    def _nested(self) -> None:
        """A folder output and an output inside it: running one deletes or hides the other."""
        reported: set[tuple[int, int]] = set()
        for inner, outer in sorted(nested(self.producers)):
            s, r = self.producers[inner]
            info = self.infos[s]
            k = info.outputs[r].index(inner)
            if (s, k) in reported:
                continue
            reported.add((s, k))
            o_s, o_r = self.producers[outer]
            owner = f"step {self.infos[o_s].step.name!r}" if o_s != s else \
                "the same instance" if o_r == r else f"another instance of this step ({info.ids[o_r]})"
            self.error(info.step, spec_key((), "outputs", k, info.step.outputs[k]),
                       f"{inner!r} ({info.ids[r]}) lies inside {outer!r}, an output of {owner}; "
                       "a folder output and an output inside it cannot both be declared")

    def _duplicate(self, info: _StepInfo, k: int, path: str, other: tuple[int, int]) -> None:
        first = self.infos[other[0]]
        pattern = info.patterns[k]
        shown = repr(path) + (f" (from {pattern.shown()})" if pattern.params else "")  # where the spelling came from
        if first is info:
            message = f"{shown} is written by two instances of this step ({first.ids[other[1]]} and another)"
        else:
            message = f"{shown} is also written by step {first.step.name!r}; each file has one producer"
        self.error(info.step, spec_key((), "outputs", k, info.step.outputs[k]), message)

    def _expectations(self) -> None:
        for info in self.infos:
            for path in info.step.expect:
                owner = self.producers.get(path)
                if owner is None or owner[0] != info.index:
                    self.error(info.step, ("expect", path), f"{path!r} is not an output of step {info.step.name!r}")

    # pass 2 -------------------------------------------------------------------------------

    def _inputs(self, info: _StepInfo) -> tuple[list[list[str]], dict[str, list[list[str]]], list[list[str]], set[int]]:
        """Per instance: input paths, named inputs, dependencies; and the steps this step depends on."""
        step = info.step
        count = len(info.rows)
        inputs: list[list[str]] = [[] for _ in range(count)]
        named: dict[str, list[list[str]]] = {}
        deps: list[list[str]] = [[] for _ in range(count)]
        edges: set[int] = set()
        for j, spec in enumerate(step.inputs):
            pattern = Pattern(spec.pattern, self.texts)
            key = spec_key((), "inputs", j, spec)
            problem = pattern.normalize and pattern.problem()
            if problem:
                self.error(step, key, f"{pattern.shown()} {problem}")
                continue
            free = [k for k in dict.fromkeys(pattern.keys) if k not in info.keys]
            if free:
                paths = self._gather(info, pattern, free, key, edges, deps)
            else:
                paths = self._bound(info, pattern, key, edges, deps)
            if paths is None:
                continue
            target = named.setdefault(spec.name, [[] for _ in range(count)]) if spec.name is not None else None
            for r in range(count):
                inputs[r].extend(paths[r])
                if target is not None:
                    target[r].extend(paths[r])
        for need in step.needs:
            self._need(info, self.by_name[need], edges, deps)
        return inputs, named, deps, edges

    def _bound(self, info: _StepInfo, pattern: Pattern, key: KeyPath, edges: set[int],
               deps: list[list[str]]) -> list[tuple[str, ...]]:
        out = []
        producers = self.producers
        for r, wildcards in enumerate(info.wildcards):
            path = pattern.render(wildcards)
            out.append((path,))
            problem = _input_problem(path)
            if problem:
                self.error(info.step, key, _rendered(pattern, path, info.ids[r], problem))
                return out
            producer = producers.get(path)
            if producer is not None:
                owner = self.infos[producer[0]]
                edges.add(producer[0])
                deps[r].append(owner.ids[producer[1]])
                if info.step.outputs and producer[0] == info.index and producer[1] == r:
                    self.error(info.step, key, f"{path!r} is both an input and an output of {owner.ids[r]}")
                    return out
                if owner.pipe_specs and path in self._pipe_paths(owner, producer[1]):
                    self.pipe_readers[path] = self.pipe_readers.get(path, 0) + 1
        return out

    def _gather(self, info: _StepInfo, pattern: Pattern, free: list[str], key: KeyPath,
                edges: set[int], deps: list[list[str]]) -> list[tuple[str, ...]] | None:
        producer = self._gather_producer(info, pattern, free, key)
        if producer is None:
            return None
        owner, spec_index = producer
        if spec_index in owner.pipe_specs:
            self.error(info.step, key, f"{pattern.text!r} gathers a pipe output; a pipe feeds exactly one instance")
            return None
        edges.add(owner.index)
        bound = [k for k in dict.fromkeys(pattern.keys) if k in info.keys]
        at = [owner.keys.index(k) for k in bound]
        groups: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        for r, row in enumerate(owner.rows):
            group = groups.setdefault(tuple(row[i] for i in at), ([], []))
            group[0].append(owner.outputs[r][spec_index])
            group[1].append(owner.ids[r])
        mine = [info.keys.index(k) for k in bound]
        out: list[tuple[str, ...]] = []
        empty = ([], [])
        for r, row in enumerate(info.rows):
            paths, ids = groups.get(tuple(row[i] for i in mine), empty)
            if not paths:
                shown = ", ".join(f"{k}={row[i]}" for k, i in zip(bound, mine))
                self.error(info.step, key, f"{pattern.text!r} gathers nothing from step {owner.step.name!r} for {shown}")
                return None
            out.append(tuple(paths))
            deps[r].extend(ids)
        return out

    def _gather_producer(self, info: _StepInfo, pattern: Pattern, free: list[str], key: KeyPath):
        """The one other step that scatters on every gathered key and writes exactly this pattern."""
        wanted = set(free)
        found = []
        for other in self.infos:
            if other is info or not wanted <= set(other.keys):
                continue
            for k, out in enumerate(other.patterns):
                if out.text == pattern.text:
                    found.append((other, k))
        keys = ", ".join("{" + k + "}" for k in free)
        if len(found) == 1:
            return found[0]
        if not found:
            self.error(info.step, key, f"{pattern.text!r}: {keys} is not a foreach key of step {info.step.name!r}, "
                       f"and no other step that scatters on it writes {pattern.text!r}, so it has no value",
                       hint="a gather names an upstream step's output pattern exactly")
        else:
            names = " and ".join(repr(o.step.name) for o, _ in found)
            self.error(info.step, key, f"{pattern.text!r} is ambiguous: steps {names} both write it")
        return None

    def _need(self, info: _StepInfo, other: _StepInfo, edges: set[int], deps: list[list[str]]) -> None:
        edges.add(other.index)
        shared = [k for k in info.keys if k in other.keys]
        if not shared:
            for mine in deps:
                mine.extend(other.ids)
            return
        at = [other.keys.index(k) for k in shared]
        groups: dict[tuple[str, ...], list[str]] = {}
        for r, row in enumerate(other.rows):
            groups.setdefault(tuple(row[i] for i in at), []).append(other.ids[r])
        mine = [info.keys.index(k) for k in shared]
        for r, row in enumerate(info.rows):
            deps[r].extend(groups.get(tuple(row[i] for i in mine), ()))

    def _pipe_paths(self, info: _StepInfo, r: int) -> set[str]:
        return {info.outputs[r][k] for k in info.pipe_specs}

    def _pipes(self) -> None:
        for info in self.infos:
            for k in sorted(info.pipe_specs):
                for r in range(len(info.rows)):
                    path = info.outputs[r][k]
                    readers = self.pipe_readers.get(path, 0)
                    if readers != 1:
                        how = "no step reads it" if not readers else f"{readers} instances read it"
                        self.error(info.step, spec_key((), "outputs", k, info.step.outputs[k]),
                                   f"pipe output {path!r}: {how}; a pipe feeds exactly one instance")
                        break

    # pass 3 -------------------------------------------------------------------------------

    def _order(self, edges: list[set[int]]) -> list[int]:
        """Steps in dependency order (manifest order among equals); a cycle is an error naming it."""
        for index, deps in enumerate(edges):
            if index in deps:
                step = self.infos[index].step
                self.error(step, (), f"step {step.name!r} reads its own outputs (a cycle: {step.name} -> {step.name})")
                return []
        remaining = {i: set(d) for i, d in enumerate(edges)}
        order: list[int] = []
        while remaining:
            ready = [i for i, deps in remaining.items() if not deps]
            if not ready:
                self._cycle(remaining)
                return []
            for i in ready:
                del remaining[i]
            for deps in remaining.values():
                deps.difference_update(ready)
            order.extend(ready)
        return order

    def _cycle(self, remaining: dict[int, set[int]]) -> None:
        start = min(remaining)
        path, seen = [start], {start: 0}
        while True:
            nxt = min(remaining[path[-1]] & set(remaining))
            if nxt in seen:
                cycle = path[seen[nxt]:] + [nxt]
                break
            seen[nxt] = len(path)
            path.append(nxt)
        names = " -> ".join(self.infos[i].step.name for i in reversed(cycle))
        first = self.infos[cycle[-1]].step
        self.error(first, (), f"the steps form a cycle: {names}", hint="a step cannot depend on its own outputs")

    def _instances(self, info: _StepInfo, inputs: list[list[str]], named: dict[str, list[list[str]]],
                   deps: list[list[str]]):
        step = info.step
        param_names = used_params(step)
        params = MappingProxyType({n: self.values[n] for n in param_names})
        plan = CommandPlan(
            segments=ph.parse(step.run, shell=True),
            params=MappingProxyType({f"params.{n}": ph.quote(self.texts[n]) for n in param_names}),
            cpus=step.resources.cpus,
            input_names=tuple(spec.name for spec in step.inputs),
            output_names=tuple(spec.name for spec in step.outputs),
        )
        source_patterns = [Pattern(s, self.texts) for s in step.sources]
        shared_sources = tuple(p.render({}) for p in source_patterns) if all(p.simple for p in source_patterns) \
            else None
        detected = None  # sources the command names, when `sources` is not declared
        if not step.sources_declared:
            detected = CommandSources(step, self.manifest.root, self.texts)
            shared_sources = detected.shared if not detected.templates else None
        output_names = plan.output_names
        named_outputs = any(output_names)
        no_pipes: frozenset[str] = frozenset()
        for r, row_id in enumerate(info.ids):
            outs = info.outputs[r]
            sources = shared_sources if shared_sources is not None else (
                detected.for_instance(info.wildcards[r]) if detected is not None
                else tuple(p.render(info.wildcards[r]) for p in source_patterns))
            yield Instance(
                id=row_id,
                step=step,
                wildcards=info.wildcards[r],
                inputs=tuple(inputs[r]),
                named_inputs=MappingProxyType({n: tuple(v[r]) for n, v in named.items()}) if named else _EMPTY_NAMED,
                outputs=outs,
                named_outputs=_named(outs, output_names) if named_outputs else _EMPTY_NAMED,
                pipes=frozenset(outs[k] for k in info.pipe_specs) if info.pipe_specs else no_pipes,
                sources=sources,
                deps=tuple(deps[r]) if len(deps[r]) < 2 else tuple(dict.fromkeys(deps[r])),
                params=params,
                plan=plan,
            )


_EMPTY_NAMED: Mapping[str, tuple[str, ...]] = MappingProxyType({})


def _rendered(pattern: Pattern, path: str, instance: str, problem: str) -> str:
    if pattern.simple and not pattern.params:
        return f"{path!r} {problem}"
    return f"{pattern.shown()} gives {path!r} for {instance}, which {problem}"


def _output_problem(path: str) -> str | None:
    """Why a rendered output path is unsafe; its spelling is checked first (the fast, common case)."""
    if not is_normal(path):
        return path_problem(path) or f"is spelled {normalize(path)!r} once normalised"
    return protected_problem(path)


def _input_problem(path: str) -> str | None:
    if not is_normal(path):
        return path_problem(path) or f"is spelled {normalize(path)!r} once normalised"
    if path.split("/", 1)[0] == ".repropack":
        return "lies inside repropack's state folder .repropack/"
    return None


def _named(outs: tuple[str, ...], names: tuple[str | None, ...]) -> Mapping[str, tuple[str, ...]]:
    if not any(names):
        return _EMPTY_NAMED
    out: dict[str, tuple[str, ...]] = {}
    for path, name in zip(outs, names):
        if name is not None:
            out[name] = out.get(name, ()) + (path,)
    return MappingProxyType(out)


def expand(manifest: Manifest, params: Mapping[str, str] = EMPTY, *, check_only: bool = False) -> Dag:
    """Every step instance of ``manifest``; ``params`` are ``--param KEY=VALUE`` overrides.

    Raises ManifestErrors for problems only visible across instances (two steps writing
    one file, a gather that matches no step, a cycle), UsageError for a bad override.
    ``check_only`` (the loader's own check) stops before building the instances.
    """
    return Expansion(manifest, params).run(check_only=check_only)


__all__ = ["CommandPlan", "Dag", "Expansion", "Instance", "expand"]
