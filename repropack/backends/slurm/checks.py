"""What a SLURM profile offers and what it cannot run, asked of the cluster once, before anything is submitted.

``capabilities`` declares the backend (shared filesystem, SLURM enforces time and memory when its
cgroup task plugin is on, jobs survive the runner). Its capacity is the profile's caps: SLURM queues
what it cannot start, so the runner hands it everything ready at once (that is what makes arrays).
``preflight`` checks each step against the partition: the partition and account exist, and cpus,
memory and time fit the partition's largest node and MaxTime; each problem names step and limit.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from repropack.backends.base import Capabilities, JobResources
from repropack.backends.slurm import cli
from repropack.human import fmt_bytes


@dataclass(frozen=True)
class Partition:
    name: str
    cpus: int | None  # the largest node's CPUs
    memory: int | None  # bytes: MaxMemPerNode, else the largest node's memory
    max_time: int | None  # seconds
    state: str


@functools.lru_cache(maxsize=1)
def config() -> dict[str, str]:
    return cli.parse_keyvalues(cli.run(["scontrol", "show", "config"]))


@functools.lru_cache(maxsize=8)
def partition(name: str | None) -> Partition | None:
    """The named partition (None: the default one); None when there is no such partition."""
    parts = cli.parse_partitions(cli.run(["scontrol", "show", "partition", "-o"]))
    if name is None:
        name = next((n for n, p in parts.items() if p.get("Default") == "YES"), next(iter(parts), None))
    fields = parts.get(name or "")
    if fields is None:
        return None
    cpus = memory = None
    nodes = cli.run(["sinfo", "-h", "-N", "-p", name, "-o", "%c|%m"])  # CPUs and MiB of each node
    for line in nodes.splitlines():
        c, _, m = line.partition("|")
        if c.strip().isdigit():
            cpus = max(cpus or 0, int(c))
        node_memory = cli.parse_memory_mb(m)
        if node_memory:
            memory = max(memory or 0, node_memory)
    per_node = cli.parse_memory_mb(fields.get("MaxMemPerNode", ""))
    if per_node:
        memory = min(memory, per_node) if memory else per_node
    return Partition(name, cpus, memory, cli.parse_time(fields.get("MaxTime", "")), fields.get("State", ""))


def capabilities(profile: Any) -> Capabilities:
    try:
        plugins = config().get("TaskPlugin", "")
    except cli.CommandFailed:
        plugins = ""
    return Capabilities(shared_filesystem=True, enforces_time=True, enforces_memory="cgroup" in plugins,
                        co_schedules=False, survives_runner=True, cpus=profile.cpus, memory=profile.memory)


def accounts() -> set[str] | None:
    """Accounts known to slurmdbd; None when accounting cannot say (then sbatch decides)."""
    try:
        text = cli.run(["sacctmgr", "-n", "-P", "show", "account", "format=account"], timeout=15)
    except cli.CommandFailed:
        return None
    return {line.strip() for line in text.splitlines() if line.strip()}


def preflight(profile: Any, steps: Sequence[tuple[str, JobResources]]) -> list[str]:
    """Problems that would make sbatch refuse or SLURM never start a step, before anything is submitted."""
    owner = f"profile {profile.name!r} (backend 'slurm')"
    options = profile.options
    try:
        part = partition(options.get("partition"))
    except cli.CommandFailed as exc:
        return [f"{owner}: cannot ask SLURM about its partitions: {exc}"]
    if part is None:
        known = ", ".join(sorted(cli.parse_partitions(cli.run(["scontrol", "show", "partition", "-o"]))))
        return [f"{owner}: partition {options.get('partition')!r} does not exist (partitions: {known})"]
    problems = []
    account = options.get("account")
    if account:
        known_accounts = accounts()
        if known_accounts is not None and account not in known_accounts:
            problems.append(f"{owner}: account {account!r} does not exist (accounts: {', '.join(sorted(known_accounts))})")
    seen = set()
    for step, r in steps:
        if (step, r) in seen:
            continue
        seen.add((step, r))
        where = f"step {step!r} on partition {part.name!r}"
        if part.cpus is not None and r.cpus > part.cpus:
            problems.append(f"{where} asks for {r.cpus} cpus; its largest node has {part.cpus}")
        if part.memory is not None and r.memory and r.memory > part.memory:
            problems.append(f"{where} asks for {fmt_bytes(r.memory)} memory; the limit per node is {fmt_bytes(part.memory)}")
        if part.max_time is not None and r.time and r.time > part.max_time:
            problems.append(f"{where} asks for {r.time} s; the partition's MaxTime is {part.max_time} s")
    return problems
