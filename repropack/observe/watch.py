"""``repropack status --watch``: a run's progress as its records tell it, redrawn until it ends.

:func:`snapshot` turns a :class:`~repropack.observe.live.LiveRun` into plain figures (per step
counts, throughput, ETA, the slowest running instances, the latest failures with their cause);
:func:`render` draws them with rich. The watcher reads the journal only, so it works from any
terminal, for a run on any backend, and says so when the runner died without ending its run.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.observe.live import STATES, LiveRun

SLOWEST = 5
RECENT_FAILURES = 5


@dataclass
class Snapshot:
    run_id: str
    status: str  # running | ok | failed | interrupted | did-not-end
    elapsed: float
    steps: dict[str, dict[str, int]]
    total: int
    finished: int
    throughput: float | None  # instances finished per minute
    eta: float | None  # seconds, from the steps' median durations and how many run at once
    slowest: list[tuple[str, float]] = field(default_factory=list)  # (instance, seconds running)
    failures: list[dict[str, Any]] = field(default_factory=list)  # id, step, failure, message, cause


def snapshot(live: LiveRun, *, now: float | None = None, running: bool = True,
             cause_of: Callable[[Any], Any] | None = None) -> Snapshot:
    now = time.time() if now is None else now
    counts = {step: {s: c.get(s, 0) for s in STATES} for step, c in sorted(live.counts().items())}
    total = int(live.record.get("instances") or len(live.instances))
    seen = sum(sum(c.values()) for c in counts.values())
    finished = sum(c["done"] + c["failed"] for c in counts.values())
    elapsed = max(0.0, (live.end_time or now) - live.start)
    throughput = finished / (elapsed / 60) if finished and elapsed > 0 else None
    status = live.status if live.ended else ("running" if running else "did-not-end")
    slow = sorted(((i.id, now - i.started) for i in live.running() if i.started is not None), key=lambda x: -x[1])
    failures = []
    for inst in live.failed()[-RECENT_FAILURES:]:
        cause = cause_of(inst) if cause_of else None
        failures.append({"id": inst.id, "step": inst.step, "failure": inst.failure, "message": inst.message,
                         "cause": cause.to_record() if cause is not None else None})
    return Snapshot(live.run_id, status, elapsed, counts, max(total, seen), finished, throughput,
                    None if live.ended else _eta(live, now, max(0, total - seen)), slow[:SLOWEST], failures)


def _eta(live: LiveRun, now: float, unseen: int) -> float | None:
    """Work left (the step's median per queued instance, what a running one has left of it) over how
    many run at once now; None before any instance has finished."""
    walls = [a.wall for a in live.attempts if a.ok and a.wall is not None]
    if not walls:
        return None
    overall = statistics.median(walls)
    left = unseen * overall
    running = 0
    for inst in live.instances.values():
        median = live.median(inst.step) or overall
        if inst.state == "queued":
            left += median
        elif inst.state == "running":
            running += 1
            left += max(0.0, median - (now - inst.started if inst.started else 0.0))
    return left / max(1, running)


def render(snap: Snapshot) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text.assemble(f"run {snap.run_id}", f"  {snap.status}  ", f"elapsed {_dur(snap.elapsed)}  ",
                         f"{snap.finished}/{snap.total} finished  ",
                         f"throughput {snap.throughput:.1f}/min  " if snap.throughput else "throughput -  ",
                         f"ETA {_dur(snap.eta)}" if snap.eta is not None else
                         ("" if snap.status != "running" else "ETA - (nothing finished yet)"))
    table = Table(box=None, pad_edge=False)
    table.add_column("step")
    for state in STATES:
        table.add_column(state, justify="right")
    for step, counts in snap.steps.items():
        table.add_row(step, *(str(counts[s]) for s in STATES))
    parts: list[Any] = [head, table]
    if snap.slowest:
        parts.append(Text("slowest running: " + ", ".join(f"{i} {_dur(s)}" for i, s in snap.slowest)))
    for f in snap.failures:
        cause = f["cause"]
        line = f"failed: {f['id']}: {f['failure']}: {f['message']}"
        parts.append(Text(line + (f"  cause: {cause['cause']} ({cause['evidence']})" if cause else ""), style="red"))
    return Group(*parts)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def planned_of(root: Path, run_id: str) -> dict[str, str]:
    """The run's planned instances (id -> step) from its instances.jsonl, when the runner wrote one."""
    from repropack.run.records.format import INSTANCES

    path = Path(root) / ".repropack" / "runs" / run_id / INSTANCES
    out: dict[str, str] = {}
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("id"), str):
                    out[record["id"]] = str(record.get("step") or record["id"].split("[", 1)[0])
    except OSError:
        return {}
    return out


def still_running(root: Path) -> bool:
    from repropack.run.lock import is_locked

    return os.path.exists(Path(root) / ".repropack") and is_locked(Path(root))
