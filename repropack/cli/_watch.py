"""``repropack status --watch``: redraw the last run's progress (rich Live) until it ends."""

from __future__ import annotations

import time
from pathlib import Path

from repropack.cli._text import say


def watch(root: Path, interval: float, current_instances) -> int:
    """Follow the project's last run; returns when it ends (or its runner is gone). Exit status 0."""
    from rich.console import Console
    from rich.live import Live

    from repropack.observe.live import JournalFollower
    from repropack.observe.watch import render, snapshot, still_running

    first = JournalFollower(root).poll()
    while first is None or (first.ended and still_running(root)):  # a new run may be starting
        if not still_running(root):
            say("no run yet in this project")
            return 0
        time.sleep(interval)
        first = JournalFollower(root).poll()
    follower = JournalFollower(root, first.run_id, _planned(root, first, current_instances))
    cause_of = _causes(root, first.run_id, first.record.get("masks"))
    console = Console()
    with Live(console=console, refresh_per_second=4, auto_refresh=False) as display:
        while True:
            live = follower.poll() or first
            running = still_running(root)
            snap = snapshot(live, running=running or not live.ended and _just_started(live), cause_of=cause_of)
            display.update(render(snap), refresh=True)
            if live.ended or snap.status == "did-not-end":
                break
            time.sleep(interval)
    if not console.is_terminal:
        console.line()  # a redirected Live leaves its last frame without one
    say(f"run {snap.run_id} " + (f"ended {snap.status}" if live.ended else
                                 "did not end (the runner was killed or crashed)"))
    return 0


def _just_started(live) -> bool:
    return time.time() - live.start < 2.0  # the lock and the run record are written a moment apart


def _planned(root: Path, live, current_instances) -> dict[str, str]:
    from repropack.observe.watch import planned_of

    planned = planned_of(root, live.run_id)
    if planned:
        return planned
    now = current_instances(root) or {}
    return now if len(now) == live.record.get("instances") else {}  # the run's selection is not known otherwise


def _causes(root: Path, run_id: str, masks):
    from repropack.manifest import load_manifest_or_none
    from repropack.observe.attempts import diagnose_attempt
    from repropack.observe.causes import table_for
    from repropack.redact import project_redactor
    from repropack.run.records.reader import open_run

    manifest = load_manifest_or_none(root)
    table, redact = table_for(manifest), project_redactor(manifest, digests=masks)
    known: dict[str, object] = {}

    def cause_of(inst):
        if inst.id not in known:
            try:
                cause = diagnose_attempt(open_run(root, run_id, only={inst.id}), inst.id, inst.failure, table)
            except (OSError, ValueError):
                cause = None
            if cause is not None:
                from dataclasses import replace

                cause = replace(cause, evidence=redact(cause.evidence))
            known[inst.id] = cause
        return known[inst.id]

    return cause_of
