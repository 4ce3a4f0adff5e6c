"""References between steps, checked once every step is parsed: unique names, ``needs``,
environments and profiles. Producers, gathers and cycles need the steps' instances and are
checked by expanding the DAG (``repropack.manifest.dag``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from repropack.manifest.model import Environment, Profile, Step
from repropack.manifest.positions import KeyPath
from repropack.manifest.validate import Checker, suggest

CheckerFor = Callable[[Step], Checker]


def link(steps: list[Step], uses: Mapping[str, list[str]], environments: Mapping[str, Environment],
         profiles: Mapping[str, Profile], checker_for: CheckerFor, own: frozenset[str] | None = None) -> list[Step]:
    """The steps with ``needs`` expanded (a use name stands for its module's steps) and environments defaulted.

    ``own`` names the project's own environments (the rest came with modules); a step that names
    none runs with the host's tools when the project itself defines no environment."""
    names: dict[str, Step] = {}
    for step in steps:
        if step.name in names:
            checker_for(step).error(step.key + ("name",), f"step name {step.name!r} is used twice",
                                    hint=f"the other one is at line {names[step.name].line}")
        else:
            names[step.name] = step
    out = []
    for step in steps:
        needs = _needs(step, names, uses, checker_for(step))
        environment = _environment(step, environments, own if own is not None else frozenset(environments),
                                   checker_for(step))
        _profile(step, profiles, checker_for(step))
        out.append(dataclasses.replace(step, needs=needs, environment=environment))
    return out


def _needs(step: Step, names: Mapping[str, Step], uses: Mapping[str, list[str]], check: Checker) -> tuple[str, ...]:
    out: list[str] = []
    for i, need in enumerate(step.needs):
        key: KeyPath = step.key + ("needs", i)
        if need == step.name:
            check.error(key, f"step {step.name!r} needs itself (a cycle: {step.name} -> {step.name})")
        elif need in names:
            out.append(need)
        elif need in uses:
            out.extend(n for n in uses[need] if n != step.name)
        else:
            bare = need.rsplit(".", 1)[-1]
            check.error(key, f"no step named {need!r}", hint=suggest(need, list(names) + list(uses)) or
                        suggest(bare, [n.rsplit(".", 1)[-1] for n in names]))
    return tuple(dict.fromkeys(out))


def _environment(step: Step, environments: Mapping[str, Environment], own: frozenset[str],
                 check: Checker) -> str | None:
    if step.environment is None:
        if not own:
            return None  # the project defines no environment (a module's are its own): the host's tools
        if "default" in own:
            return "default"
        check.error(step.key, f"step {step.name!r} names no environment and there is no [environments.default]",
                    hint=f"add  environment = \"{next(e for e in environments if e in own)}\"  or name an environment 'default'")
        return None
    if step.environment not in environments:
        where = "in the module" if step.origin is not None else "in [environments]"
        check.error(step.key + ("environment",), f"undefined environment {step.environment!r} ({where})",
                    hint=suggest(step.environment, environments))
    return step.environment


def _profile(step: Step, profiles: Mapping[str, Profile], check: Checker) -> None:
    if step.profile is None or step.profile in profiles or step.profile == "local":
        return
    check.error(step.key + ("profile",), f"undefined profile {step.profile!r} (define [profiles.{step.profile}])",
                hint=suggest(step.profile, list(profiles) + ["local"]))
