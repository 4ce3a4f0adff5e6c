"""``repropack logs STEP[:INSTANCE]``: the output streams of a step instance's last run."""

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
@project_dir
def command(selector, attempt, stream, lines, project_dir):
    """Show the script, exit status, metrics and output of a step instance."""
    from repropack.errors import UsageError
    from repropack.human import fmt_bytes, fmt_seconds
    from repropack.run.lookup import find_instances
    from repropack.run.rundir import InstanceDir, tail

    root = project_dir.resolve()
    found = find_instances(root, selector)
    if not found:
        raise UsageError(f"no instance matches {selector!r} in this project's runs")
    if len(found) > 1:
        names = "\n  ".join(sorted(found)[:20])
        raise UsageError(f"{selector!r} matches {len(found)} instances; name one:\n  {names}")
    (iid, path), = found.items()
    idir = InstanceDir(path)
    chosen = idir.attempt(attempt) if attempt else idir.last_attempt()
    if chosen is None or not chosen.path.is_dir():
        raise UsageError(f"{iid}: no attempt directory under {path}")
    metrics = chosen.read_metrics()
    redact = _redactor(root, path.parent.name)  # the step's files keep what it wrote; what we print is masked
    say(f"== {iid} attempt {chosen.attempt}  ({chosen.path})")
    say(f"exit code: {chosen.read_exit_code()}  failure: {metrics.get('failure')}  "
        f"wall: {fmt_seconds(metrics.get('wall'))}  cpu: {fmt_seconds(metrics.get('cpu'))}  "
        f"peak rss: {fmt_bytes(metrics.get('peak_rss'))}"
        + (f" ({metrics['peak_rss_source']})" if metrics.get("peak_rss_source") else ""))
    click.echo("-- script.sh")
    say(redact(chosen.script.read_text(encoding="utf-8", errors="replace")) if chosen.script.exists() else "(none)")
    for name in ("stdout", "stderr"):
        if stream not in ("both", name):
            continue
        file = getattr(chosen, name)
        click.echo(f"-- {name}")
        if lines:
            say(redact(tail(file, lines)))
        elif file.exists():
            say(redact(file.read_text(encoding="utf-8", errors="replace")), nl=False)


def _redactor(root: Path, run_id: str):
    """The redactor of the run that made the instance: its recorded digests, the manifest, the environment."""
    from repropack.manifest import load_manifest_or_none
    from repropack.redact import project_redactor
    from repropack.run.journal import read_records
    from repropack.run.runner import JOURNAL

    run = next((r for r in read_records(root / JOURNAL, kinds=("run",)) if r.get("run") == run_id), {})
    return project_redactor(load_manifest_or_none(root), digests=run.get("masks"))
