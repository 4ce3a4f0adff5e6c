"""``repropack logs STEP[:INSTANCE]``: the script, metrics, output digests and streams of a step instance."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._complete import instance_selectors
from repropack.cli._options import project_dir
from repropack.cli._text import say


@click.command("logs")
@click.argument("selector", metavar="STEP[:INSTANCE]", shell_complete=instance_selectors)
@click.option("--attempt", type=int, help="Show this attempt (default: the last).")
@click.option("--stream", type=click.Choice(["both", "stdout", "stderr"]), default="both", show_default=True)
@click.option("-n", "--lines", type=int, default=0, help="Only the last N lines of each stream.")
@click.option("--script", "script_only", is_flag=True,
              help="Print only the exact script the attempt ran (re-rendered from the records when not kept).")
@project_dir
def command(selector, attempt, stream, lines, script_only, project_dir):
    """Show the script, exit status, metrics, output digests and output streams of a step instance."""
    from repropack.errors import UsageError
    from repropack.run.lookup import find_instances, open_instance

    root = project_dir.resolve()
    found = find_instances(root, selector)
    if not found:
        raise UsageError(f"no instance matches {selector!r} in this project's runs")
    if len(found) > 1:
        names = "\n  ".join(sorted(found)[:20])
        raise UsageError(f"{selector!r} matches {len(found)} instances; name one:\n  {names}")
    (iid, run_id), = found.items()
    try:
        view, _ = open_instance(root, iid, run_id)
    except FileNotFoundError:
        raise UsageError(f"{iid}: the records of run {run_id} are gone (.repropack/runs/{run_id})") from None
    attempts = view.attempts(iid)
    chosen = next((a for a in attempts if a.attempt == attempt), None) if attempt else (attempts[-1] if attempts else None)
    if chosen is None:
        which = f"attempt {attempt}" if attempt else "attempt"
        raise UsageError(f"{iid}: no {which} recorded in run {run_id} ({view.path.relative_to(root)})")
    redact = _redactor(root, view)  # the step's files keep what it wrote; what we print is masked
    script = view.script(iid, chosen)
    if script_only:
        if script is None:
            raise UsageError(f"{iid}: run {run_id} (format {view.format}) kept no script for attempt {chosen.attempt}")
        say(redact(script), nl=False)
        return
    _header(root, view, iid, chosen, redact)
    click.echo("-- script.sh")
    say(redact(script) if script is not None else "(none)")
    for name in ("stdout", "stderr"):
        if stream not in ("both", name):
            continue
        data = view.stream(chosen, name, max_bytes=(64 << 10) if lines else None)
        text = data.decode("utf-8", "replace")
        click.echo(f"-- {name}")
        if lines:
            say(redact("\n".join(text.splitlines()[-lines:])))
        elif text:
            say(redact(text), nl=False)


def _header(root: Path, view, iid: str, chosen, redact) -> None:
    from repropack.human import fmt_bytes, fmt_seconds
    from repropack.run.verify import result_problems

    say(f"== {iid} attempt {chosen.attempt}  (run {view.run_id}, {view.path.relative_to(root)})")
    say(f"exit code: {chosen.exit_status}  failure: {chosen.failure}  "
        f"wall: {fmt_seconds(chosen.wall)}  cpu: {fmt_seconds(chosen.cpu)}  "
        f"peak rss: {fmt_bytes(chosen.peak_rss)}"
        + (f" ({chosen.peak_rss_source})" if chosen.peak_rss_source else ""))
    declared = view.instances.get(iid)
    if declared is not None and declared.command is not None:
        say(f"command: {redact(declared.command)}")  # as declared (the script below is what ran)
    if chosen.message and chosen.failure:
        say(f"message: {chosen.message}")
    for out in chosen.outputs:
        size = f"  {fmt_bytes(out.size)}" if out.size is not None else ""
        say(f"output: {out.path}  sha256 {out.sha256}{size}")
    if chosen.ok:
        for problem in result_problems(root, chosen.outputs):
            say(f"not done: {problem}")


def _redactor(root: Path, view):
    """The redactor of the run that made the instance: its recorded digests, the manifest, the environment."""
    from repropack.manifest import load_manifest_or_none
    from repropack.redact import project_redactor
    from repropack.run.journal import read_records
    from repropack.run.lookup import JOURNAL

    run = next((r for r in read_records(root / JOURNAL, kinds=("run",)) if r.get("run") == view.run_id), {})
    masks = run.get("masks") or (view.info.masks if isinstance(view.info.masks, dict) else None)
    return project_redactor(load_manifest_or_none(root), digests=masks)
