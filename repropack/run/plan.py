"""Whether a step instance must run, and why (shared by ``run`` and ``run --dry-run``).

An instance is skipped when the journal holds a ``done`` record with the same
key and every recorded output still has its recorded digest. Otherwise the
reasons are named: new, changed command, changed environment, changed input,
changed source, changed params, output missing or modified, or an upstream
instance that runs first. A record made under an older key scheme reruns once, saying so.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.errors import RunError
from repropack.paths import link_escape
from repropack.run.attempt import resources_for
from repropack.run.environments import Environments
from repropack.run.journal import JournalState
from repropack.run.keys import KEY_SCHEME, FileHashCache, KeyParts, change_reasons, make_parts, scheme_of
from repropack.run.trees import tree_digest


@dataclass
class Decision:
    instance_id: str
    run: bool
    reasons: list[str] = field(default_factory=list)
    parts: KeyParts | None = None
    missing: list[str] = field(default_factory=list)  # inputs absent from disk


class Planner:
    def __init__(
        self,
        dag: Any,
        state: JournalState,
        hashes: FileHashCache,
        environments: Environments,
        *,
        resume: bool = True,
        keyed_env: Callable[[Any], Mapping[str, str]] | None = None,
    ):
        self.dag = dag
        self.state = state
        self.hashes = hashes
        self.environments = environments
        self.resume = resume
        self.keyed_env = keyed_env or (lambda inst: {})

    def parts(self, inst: Any, pipe_keys: Mapping[str, str] | None = None) -> tuple[KeyParts | None, list[str]]:
        """The key parts of an instance, or (None, missing inputs) when some input is absent.

        A piped input has no file to hash: its producer's key (``pipe_keys``) stands for its content.
        """
        file_inputs = [p for p in inst.inputs if not self._is_pipe(p)]
        inputs = self.hashes.digests(file_inputs, missing_ok=True)
        missing = [p for p in file_inputs if p not in inputs]
        if missing:
            return None, missing
        for path, key in (pipe_keys or {}).items():
            if path in inst.inputs:
                inputs[path] = key
        sources = self.hashes.digests(inst.sources, missing_ok=True)
        parts = make_parts(
            key_material=inst.key_material(),
            environment=self.environments.lock_hash(inst.step.environment),
            inputs=inputs,
            sources=sources,
            params=inst.params,
            order=inst.inputs,
            outputs=inst.outputs,
            cpus=resources_for(inst.step, 1).cpus,
            env=self.keyed_env(inst),
        )
        return parts, []

    def _is_pipe(self, path: str) -> bool:
        producer = self.dag.producers.get(path)
        return producer is not None and path in self.dag.instances[producer].pipes

    def decide(self, inst: Any, upstream: list[str] | None = None, pipe_keys: Mapping[str, str] | None = None) -> Decision:
        """`upstream`: ids of instances this one depends on that will run first (dry-run only)."""
        if upstream:
            more = f" and {len(upstream) - 1} more" if len(upstream) > 1 else ""
            return Decision(inst.id, True, [f"upstream {upstream[0]}{more} runs first"])
        parts, missing = self.parts(inst, pipe_keys)
        if parts is None:
            return Decision(inst.id, True, [f"missing input {missing[0]}"], missing=missing)
        if not self.resume:
            return Decision(inst.id, True, ["--no-resume"], parts)
        old = self.state.done.get(inst.id)
        if old is None:
            return Decision(inst.id, True, ["new"], parts)
        scheme = scheme_of(old.get("key"))
        if scheme != f"k{KEY_SCHEME}":  # an older repropack's record: its parts mean other things
            return Decision(inst.id, True, [f"cache key scheme changed ({scheme or 'none'} -> k{KEY_SCHEME})"], parts)
        if old.get("key") != parts.key:
            return Decision(inst.id, True, change_reasons(old.get("parts"), parts) or ["changed key"], parts)
        changed = self.changed_outputs(inst, old.get("outputs") or {})
        if changed:
            return Decision(inst.id, True, changed, parts)
        return Decision(inst.id, False, [], parts)

    def changed_outputs(self, inst: Any, recorded: Mapping[str, str]) -> list[str]:
        reasons = []
        for path in inst.outputs:
            if path in inst.pipes:
                continue
            digest = self._output_digest(path)
            if digest is None:
                reasons.append(f"output {path} missing")
            elif recorded.get(path) != digest:
                reasons.append(f"output {path} modified")
            elif path in inst.step.expect and inst.step.expect[path].split(":", 1)[-1] != digest:
                reasons.append(f"output {path} does not match its expect digest")  # expect added since
        return reasons

    def _output_digest(self, path: str) -> str | None:
        """As recorded when the output was made: a tree digest for a folder, else the file's."""
        try:
            mode = os.lstat(os.path.join(self.hashes.root, path)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):  # never an output (never recorded as one): modified, and its target is not read
            return "link"
        if stat.S_ISDIR(mode):
            return tree_digest(Path(self.hashes.root) / path)
        return self.hashes.digest(path)


def decide_unit(planner: Planner, members: tuple[str, ...]) -> list[Decision]:
    """Decisions for instances joined by pipes: all run if any must (they run together)."""
    dag = planner.dag
    keys: dict[str, str] = {}
    decisions = []
    for iid in members:
        inst = dag.instances[iid]
        decision = planner.decide(inst, pipe_keys=keys)
        for path in inst.pipes:
            keys[path] = decision.parts.key if decision.parts else "unknown"
        decisions.append(decision)
    if any(d.run for d in decisions):
        for d in decisions:
            if not d.run:
                d.run, d.reasons = True, ["runs with the instances it streams to or from"]
    return decisions


def dry_run(planner: Planner) -> list[Decision]:
    """Every instance of the DAG with its decision, in topological order."""
    from repropack.run.pipes import pipe_units

    units = pipe_units(planner.dag)
    decided: dict[str, Decision] = {}
    will_run: set[str] = set()
    for inst in planner.dag.instances.values():
        if inst.id in decided:
            continue
        members = units.get(inst.id, (inst.id,))
        upstream = [d for m in members for d in planner.dag.instances[m].deps if d in will_run and d not in members]
        if len(members) > 1 and not upstream:
            batch = decide_unit(planner, members)
        else:
            batch = [planner.decide(planner.dag.instances[m], upstream) for m in members]
            if len(members) > 1 and any(d.run for d in batch):
                for d in batch:
                    d.run = True
        for d in batch:
            decided[d.instance_id] = d
            if d.run:
                will_run.add(d.instance_id)
    return [decided[iid] for iid in planner.dag.instances]


def refuse_outside_links(root: Path, dag: Any, data_paths: Iterable[str] = ()) -> None:
    """Before anything runs: no input, output or data path goes through a link leading outside
    the project. An input may not be such a link itself (its content would be read from outside);
    an output's own last component is not followed (it is replaced), only the folders above it."""
    cache: dict[str, str | None] = {}
    seen: set[tuple[str, bool]] = set()
    for inst in dag.instances.values():
        for kind, paths, last in (("input", inst.inputs, True), ("output", inst.outputs, False)):
            for path in paths:
                if (path, last) in seen:
                    continue
                seen.add((path, last))
                _refuse(root, f"{inst.id}: {kind} {path}", path, cache, last)
    for path in data_paths:
        _refuse(root, f"[data] {path}", path, cache, False)


def _refuse(root: Path, what: str, path: str, cache: dict[str, str | None], last: bool) -> None:
    link = link_escape(root, path, cache, last=last)
    if link is None:
        return
    target = os.readlink(root / link)
    raise RunError(f"{what}: {link!r} is a symbolic link leading outside the project (to {target!r}); nothing was run",
                   hint="repropack does not follow links out of the project: copy the files in, or declare them "
                   "under [data]")
