"""``repropack status``: the state of the last run, step by step."""

from __future__ import annotations

from collections import Counter, defaultdict

import click

from repropack.cli._options import echo_json, json_output, project_dir
from repropack.cli._text import say


def _current_instances(root) -> dict[str, str] | None:
    """The manifest's instances now (id -> step), or None when it cannot be read (status still answers)."""
    from repropack.errors import ReproError
    from repropack.manifest import load_manifest
    from repropack.manifest.dag import expand

    try:
        dag = expand(load_manifest(root), {})
    except (ReproError, OSError):
        return None
    return {iid: inst.step.name for iid, inst in dag.instances.items()}


@click.command("status")
@click.option("--watch", is_flag=True,
              help="Redraw the last run's progress (per step, throughput, ETA, slowest, failures) until it ends.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between redraws with --watch.")
@project_dir
@json_output
def command(watch, interval, project_dir, as_json):
    """Show the state of the last run: per step, how many instances are done, cached, failed, not run."""
    from repropack.run.status import last_run_status

    root = project_dir.resolve()
    if watch:
        from repropack.cli._watch import watch as follow
        from repropack.errors import UsageError

        if as_json:
            raise UsageError("--watch draws for a terminal; use `status --json` (once) for scripts")
        follow(root, interval, _current_instances)
        return
    last, table = last_run_status(root, _current_instances(root))
    _add_causes(root, table, (last or {}).get("masks"))
    if as_json:
        counts = Counter(entry["state"] for entry in table.values())
        echo_json({"run": last, "instances": table, "counts": dict(counts)})
        return
    if last is None:
        say("no run yet in this project")
        return
    say(f"last run {last['run']} (started {_when(last.get('start'))}): {_ending(last)}")
    per_step: dict[str, Counter] = defaultdict(Counter)
    for iid, entry in table.items():
        per_step[entry.get("step") or iid.split("[", 1)[0]][entry.get("state", "?")] += 1
    for step, counts in per_step.items():
        say(f"  {step:<24} " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for iid, entry in table.items():
        if entry.get("state") == "failed":
            say(f"failed: {iid}: {entry.get('failure')}: {entry.get('message')}  (repropack logs {iid})")
            if entry.get("cause"):
                say(f"  cause: {entry['cause']['cause']} ({entry['cause']['evidence']}); fix: {entry['cause']['fix']}")
    for iid, entry in table.items():
        if entry.get("state") == "changed":
            say(f"changed: {iid}: {entry.get('message')}")
    if any(e.get("state") == "unknown" for e in table.values()):
        say("unknown: not reached by the last run (finished by an earlier one); `repropack run --dry-run` says "
            "whether it is up to date")


def _add_causes(root, table: dict, masks) -> None:
    """Each failed instance's cause, read from its run directory (secrets masked)."""
    failed = [e for e in table.values() if e.get("state") == "failed"]
    if not failed:
        return
    from repropack.manifest import load_manifest_or_none
    from repropack.observe.causes import table_for
    from repropack.redact import project_redactor

    manifest = load_manifest_or_none(root)
    causes, redact = table_for(manifest), project_redactor(manifest, digests=masks)
    from repropack.observe.attempts import diagnose_attempt
    from repropack.run.records.reader import open_run

    views: dict = {}
    for iid, entry in table.items():
        if entry.get("state") != "failed" or not entry.get("run"):
            continue
        if entry["run"] not in views:
            try:
                views[entry["run"]] = open_run(root, entry["run"])
            except FileNotFoundError:
                views[entry["run"]] = None
        cause = diagnose_attempt(views[entry["run"]], iid, entry.get("failure"), causes)
        if cause is not None:
            entry["cause"] = {**cause.to_record(), "evidence": redact(cause.evidence)}


def _ending(run: dict) -> str:
    if run.get("ended"):
        return f"ended {run.get('status')}"
    if run.get("status") == "running":
        return "still running"
    return "did not end (the runner was killed or crashed); what it had not finished is interrupted or unknown"


def _when(stamp) -> str:
    import time

    if not isinstance(stamp, (int, float)):
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
