"""The workflow as a DAG of step instances: what runs, in which order, reading and writing what.

:func:`repropack.manifest.dag.expand` makes these: one :class:`Instance` per foreach row,
with concrete project-relative inputs and outputs, the instances it depends on (through its
inputs and ``needs``) and a command renderer that quotes every value, in a :class:`Dag`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from repropack.errors import UsageError
from repropack.manifest import placeholders as ph
from repropack.manifest.model import Step
from repropack.manifest.validate import suggest

INPUTS_LIST_TOKEN = "{inputs:list}"  # stands for the list file in key material: its path is per run


@dataclass(frozen=True, slots=True)
class CommandPlan:
    """What every instance of one step shares for rendering its command."""

    segments: tuple[ph.Segment, ...]
    params: Mapping[str, str]  # "params.NAME" -> quoted text
    cpus: int
    input_names: tuple[str | None, ...]
    output_names: tuple[str | None, ...]

    @property
    def uses_inputs_list(self) -> bool:
        return any(not isinstance(s, str) and s.fmt == "list" for s in self.segments)


@dataclass(frozen=True, slots=True)
class Instance:
    id: str  # "count[sample=a]" (keys sorted) or "summary"
    step: Step
    wildcards: Mapping[str, str]
    inputs: tuple[str, ...]  # project-relative paths, in order (gathers in the producer's foreach order)
    named_inputs: Mapping[str, tuple[str, ...]]
    outputs: tuple[str, ...]
    named_outputs: Mapping[str, tuple[str, ...]]
    pipes: frozenset[str]  # outputs marked pipe = true
    sources: tuple[str, ...]  # project-relative files: declared, or else the project files the command names
    deps: tuple[str, ...]  # ids of instances that must finish first (from inputs and needs)
    params: Mapping[str, Any]  # the params this instance's command uses (after overrides)
    plan: CommandPlan = field(repr=False, compare=False)

    @property
    def uses_inputs_list(self) -> bool:
        """True when the command has ``{inputs:list}``: the runner must write the list file."""
        return self.plan.uses_inputs_list

    def command(
        self,
        *,
        attempt: int = 1,
        outputs: Sequence[str] | None = None,
        inputs_list: str | None = None,
        cpus: int | None = None,
    ) -> str:
        """The shell command; ``outputs`` replaces the output paths (same order), ``inputs_list``
        is the path of the file listing the inputs, one per line, for ``{inputs:list}``."""
        if inputs_list is None and self.plan.uses_inputs_list:
            raise ValueError(f"{self.id}: the command uses {{inputs:list}}; pass inputs_list")
        outs = tuple(outputs) if outputs is not None else self.outputs
        if len(outs) != len(self.outputs):
            raise ValueError(f"{self.id}: {len(outs)} output paths given for {len(self.outputs)} outputs")
        return self._render(attempt, outs, ph.quote_path(inputs_list) if inputs_list is not None else "", cpus)

    def key_material(self) -> str:
        """The command with project-relative paths and attempt 1, before temporary outputs: the cache key's text."""
        return self._render(1, self.outputs, INPUTS_LIST_TOKEN, None)

    def _render(self, attempt: int, outs: tuple[str, ...], inputs_list: str, cpus: int | None) -> str:
        values: dict[str, str] = {}
        plan = self.plan
        for s in plan.segments:
            if isinstance(s, str) or s.key in values:
                continue
            values[s.key] = self._value(s, attempt, outs, inputs_list, cpus)
        return ph.render(plan.segments, values)

    def _value(self, p: ph.Placeholder, attempt: int, outs: tuple[str, ...], inputs_list: str, cpus: int | None) -> str:
        if p.name == "inputs":
            if p.fmt == "list":
                return inputs_list
            return ph.quote_paths(self.inputs if p.attr is None else self.named_inputs[p.attr])
        if p.name == "outputs":
            if p.attr is None:
                return ph.quote_paths(outs)
            return ph.quote_paths(o for o, n in zip(outs, self.plan.output_names) if n == p.attr)
        if p.name == "params":
            return self.plan.params[p.key]
        if p.name == "resources":
            return str(cpus if cpus is not None else self.plan.cpus)
        if p.name == "attempt":
            return str(attempt)
        return ph.quote(self.wildcards[p.name])


@dataclass(frozen=True)
class Dag:
    """Instances in a topological order, and which instance writes each output path.

    After :meth:`select`, an instance's ``deps`` may name instances outside ``instances``:
    those were not selected, and their outputs must already exist.
    """

    instances: Mapping[str, Instance]  # topological order
    producers: Mapping[str, str]  # output path -> instance id

    def __len__(self) -> int:
        return len(self.instances)

    def steps(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(inst.step.name for inst in self.instances.values()))

    def select(self, targets: Iterable[str] = (), from_: str | None = None, until: str | None = None) -> "Dag":
        """The instances needed for the target steps (all if none), restricted to ``from_`` and what
        follows it and to ``until`` and what precedes it. Names are step names; a module's use name
        stands for all its steps."""
        targets = tuple(targets)
        chosen: set[str] | None = None
        if targets:
            chosen = self._upstream(self._ids(targets))
        if until is not None:
            upto = self._upstream(self._ids((until,)))
            chosen = upto if chosen is None else chosen & upto
        if from_ is not None:
            after = self._downstream(self._ids((from_,)))
            chosen = after if chosen is None else chosen & after
        if chosen is None:
            return self
        instances = {i: inst for i, inst in self.instances.items() if i in chosen}
        producers = {path: i for path, i in self.producers.items() if i in chosen}
        return Dag(MappingProxyType(instances), MappingProxyType(producers))

    def _ids(self, names: Iterable[str]) -> list[str]:
        steps = self.steps()
        wanted: set[str] = set()
        for name in names:
            matched = {s for s in steps if s == name or s.startswith(name + ".")}
            if not matched:
                raise UsageError(f"no step named {name!r}", hint=suggest(name, steps) or f"steps: {', '.join(steps)}")
            wanted |= matched
        return [i for i, inst in self.instances.items() if inst.step.name in wanted]

    def _upstream(self, start: list[str]) -> set[str]:
        seen = set(start)
        stack = list(start)
        while stack:
            for dep in self.instances[stack.pop()].deps:
                if dep not in seen and dep in self.instances:
                    seen.add(dep)
                    stack.append(dep)
        return seen

    def _downstream(self, start: list[str]) -> set[str]:
        seen = set(start)
        for i, inst in self.instances.items():  # topological order: one pass suffices
            if i not in seen and any(d in seen for d in inst.deps):
                seen.add(i)
        return seen

