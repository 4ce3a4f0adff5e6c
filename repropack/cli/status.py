"""``repropack status``: the state of the last run, step by step."""

from __future__ import annotations

from collections import Counter, defaultdict

import click

from repropack.cli._options import echo_json, json_output, project_dir


def instance_table(root) -> tuple[dict | None, dict[str, dict]]:
    """(last run record, instance id -> {step, state, failure, message, attempts})."""
    from repropack.run.journal import load_state
    from repropack.run.lock import is_locked
    from repropack.run.runner import JOURNAL

    state = load_state(root / JOURNAL)
    running = is_locked(root)
    table: dict[str, dict] = {}
    for iid, record in state.done.items():
        table[iid] = {"step": record.get("step"), "state": "cached", "attempts": record.get("attempts")}
    for iid, record in state.instance_states().items():
        kind = record["t"]
        entry = table.setdefault(iid, {"step": record.get("step")})
        if kind == "done":
            entry.update(state="done", attempts=record.get("attempts"))
        elif kind == "failed":
            entry.update(state="failed", failure=record.get("failure"), message=record.get("message"),
                         attempts=record.get("attempts"))
        elif kind in ("start", "attempt"):
            entry.update(state="running" if running else "interrupted", attempts=record.get("attempt"))
    return state.last_run, table


@click.command("status")
@project_dir
@json_output
def command(project_dir, as_json):
    """Show the state of the last run: per step, how many instances are done, cached, failed."""
    root = project_dir.resolve()
    last, table = instance_table(root)
    if as_json:
        echo_json({"run": last, "instances": table})
        return
    if last is None:
        click.echo("no run yet in this project")
        return
    click.echo(f"last run {last['run']} (started {_when(last.get('start'))})")
    per_step: dict[str, Counter] = defaultdict(Counter)
    for iid, entry in table.items():
        per_step[entry.get("step") or iid.split("[", 1)[0]][entry.get("state", "?")] += 1
    for step, counts in per_step.items():
        click.echo(f"  {step:<24} " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for iid, entry in table.items():
        if entry.get("state") == "failed":
            click.echo(f"failed: {iid}: {entry.get('failure')}: {entry.get('message')}  (repropack logs {iid})")


def _when(stamp) -> str:
    import time

    if not isinstance(stamp, (int, float)):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
