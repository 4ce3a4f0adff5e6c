"""The report's model: one run, its instances and attempts, per-step resource summaries.

Plain dataclasses so that ``repropack report --json`` and the HTML renderer read the
same thing; :func:`to_record` gives the JSON form (versioned with ``REPORT_VERSION``).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_VERSION = 1

# instance states, in the order the report lists them
DONE, FAILED, RUNNING, INTERRUPTED, CACHED, NOT_RUN = "done", "failed", "running", "interrupted", "cached", "not-run"
STATES = (DONE, FAILED, RUNNING, INTERRUPTED, CACHED, NOT_RUN)


@dataclass
class Attempt:
    attempt: int
    status: str  # ok | failed | running
    start: float | None = None  # epoch seconds
    end: float | None = None
    wall: float | None = None  # seconds
    cpu: float | None = None  # user + system seconds
    peak_rss: int | None = None  # bytes
    peak_rss_source: str | None = None  # cgroup-v1 | cgroup-v2 | proc-sampler | none (docs/runner.md)
    cpu_source: str | None = None  # cgroup-v1 | cgroup-v2 | rusage | none
    req_cpus: int = 1
    req_memory: int | None = None  # bytes; None when the step states none
    req_time: int | None = None
    failure: str | None = None  # exit | signal | oom | timeout | lost | cancelled | missing-output | ...
    message: str = ""
    exit: int | None = None
    signal: int | None = None
    backend: str | None = None  # the backend that ran it (local, slurm, aws-batch)
    cost: float | None = None  # estimated from the profile's price table (aws-batch `cost`), in `currency`
    currency: str | None = None

    @property
    def reserved_cpu(self) -> float:
        """cpus x wall: the CPU seconds this attempt held, used or not."""
        return (self.wall or 0.0) * self.req_cpus


@dataclass
class Instance:
    id: str
    step: str
    state: str
    attempts: list[Attempt] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    dir: str | None = None  # project-relative run directory
    failure: str | None = None
    message: str = ""
    command: str = ""  # failed instances only (secrets redacted)
    log_tail: dict[str, str] = field(default_factory=dict)  # stream -> last lines (failed only, redacted)
    cause: dict[str, str] | None = None  # failed only: id, cause, fix, evidence (repropack/observe/causes.py)
    critical: bool = False

    @property
    def start(self) -> float | None:
        starts = [a.start for a in self.attempts if a.start is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> float | None:
        ends = [a.end for a in self.attempts if a.end is not None]
        return max(ends) if ends else None

    @property
    def span(self) -> float:
        """Seconds from the first attempt's start to the last one's end (0 when it did not run)."""
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, self.end - self.start)

    @property
    def cpu(self) -> float:
        return sum(a.cpu or 0.0 for a in self.attempts)

    @property
    def reserved_cpu(self) -> float:
        return sum(a.reserved_cpu for a in self.attempts)

    @property
    def peak_rss(self) -> int | None:
        peaks = [a.peak_rss for a in self.attempts if a.peak_rss is not None]
        return max(peaks) if peaks else None

    @property
    def backend(self) -> str | None:
        return next((a.backend for a in reversed(self.attempts) if a.backend), None)

    @property
    def cost(self) -> float | None:
        costs = [a.cost for a in self.attempts if a.cost is not None]
        return sum(costs) if costs else None


@dataclass
class StepSummary:
    name: str
    counts: dict[str, int]
    wall_median: float | None
    wall_max: float | None
    cpu_seconds: float
    reserved_cpu_seconds: float
    peak_rss_max: int | None
    req_memory: int | None  # the largest memory asked for by an attempt of this step
    req_cpus: int
    backends: list[str] = field(default_factory=list)  # where its instances ran
    cost: float | None = None  # estimated, every attempt (failed ones too)

    @property
    def cpu_efficiency(self) -> float | None:
        return self.cpu_seconds / self.reserved_cpu_seconds if self.reserved_cpu_seconds > 0 else None

    @property
    def memory_use(self) -> float | None:
        if not self.req_memory or self.peak_rss_max is None:
            return None
        return self.peak_rss_max / self.req_memory


@dataclass
class Report:
    project: str
    run_id: str
    status: str  # ok | failed | interrupted | running | crashed
    start: float | None
    end: float | None
    host: str = ""
    profile: str | None = None
    argv: list[str] = field(default_factory=list)
    total: int = 0  # instances in the run's DAG (ran or cached)
    instances: dict[str, Instance] = field(default_factory=dict)  # run order
    steps: list[StepSummary] = field(default_factory=list)
    critical_path: list[str] = field(default_factory=list)
    critical_seconds: float = 0.0
    deps_source: str = "records"  # records (format 2) | run-dirs (format 1) | none: where the dependencies came from
    generated: float = 0.0
    provenance: Any = None  # the run's RunFacts (repropack/provenance/model.py): the reproducibility record
    link_base: Any = None  # the folder the HTML is written to: links to SBOMs are relative to it

    @property
    def wall(self) -> float:
        if self.start is None:
            return 0.0
        return max(0.0, (self.end or self.generated or self.start) - self.start)

    @property
    def cpu_seconds(self) -> float:
        return sum(i.cpu for i in self.instances.values())

    @property
    def cost(self) -> float | None:
        costs = [i.cost for i in self.instances.values() if i.cost is not None]
        return sum(costs) if costs else None

    @property
    def currency(self) -> str | None:
        return next((a.currency for i in self.instances.values() for a in i.attempts if a.currency), None)

    @property
    def reserved_cpu_seconds(self) -> float:
        return sum(i.reserved_cpu for i in self.instances.values())

    def count(self, state: str) -> int:
        return sum(1 for i in self.instances.values() if i.state == state)

    @property
    def failed(self) -> list[Instance]:
        return [i for i in self.instances.values() if i.state == FAILED]


def summarize_steps(instances: dict[str, Instance]) -> list[StepSummary]:
    by_step: dict[str, list[Instance]] = {}
    for inst in instances.values():
        by_step.setdefault(inst.step, []).append(inst)
    out = []
    for name, group in by_step.items():
        counts = {s: 0 for s in STATES}
        for inst in group:
            counts[inst.state] = counts.get(inst.state, 0) + 1
        walls = [a.wall for i in group for a in i.attempts if a.wall is not None]
        peaks = [i.peak_rss for i in group if i.peak_rss is not None]
        mems = [a.req_memory for i in group for a in i.attempts if a.req_memory]
        cpus = [a.req_cpus for i in group for a in i.attempts]
        out.append(StepSummary(
            name=name,
            counts={s: n for s, n in counts.items() if n},
            wall_median=statistics.median(walls) if walls else None,
            wall_max=max(walls) if walls else None,
            cpu_seconds=sum(i.cpu for i in group),
            reserved_cpu_seconds=sum(i.reserved_cpu for i in group),
            peak_rss_max=max(peaks) if peaks else None,
            req_memory=max(mems) if mems else None,
            req_cpus=max(cpus) if cpus else 1,
            backends=sorted({i.backend for i in group if i.backend}),
            cost=_sum_costs(i.cost for i in group),
        ))
    return out


def _sum_costs(costs: Any) -> float | None:
    known = [c for c in costs if c is not None]
    return sum(known) if known else None


def to_record(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (``repropack report --json``)."""
    return {
        "version": REPORT_VERSION,
        "project": report.project,
        "run": report.run_id,
        "status": report.status,
        "start": report.start,
        "end": report.end,
        "wall": report.wall,
        "host": report.host,
        "profile": report.profile,
        "argv": report.argv,
        "total": report.total,
        "counts": {s: report.count(s) for s in STATES if report.count(s)},
        "cpu_hours": report.cpu_seconds / 3600,
        "reserved_cpu_hours": report.reserved_cpu_seconds / 3600,
        "cost": {"estimate": report.cost, "currency": report.currency} if report.cost is not None else None,
        "critical_path": report.critical_path,
        "critical_seconds": report.critical_seconds,
        "deps_source": report.deps_source,
        "steps": [{**asdict(s), "cpu_efficiency": s.cpu_efficiency, "memory_use": s.memory_use} for s in report.steps],
        "instances": {iid: _instance_record(inst) for iid, inst in report.instances.items()},
    }


def _instance_record(inst: Instance) -> dict[str, Any]:
    record = asdict(inst)
    record.pop("id")
    if not record["deps"]:
        record.pop("deps")
    for key in ("command", "log_tail", "message", "failure", "dir", "cause"):
        if not record[key]:
            record.pop(key)
    return record
