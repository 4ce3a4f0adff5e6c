"""``repropack clean``: remove old run records, caches and stale environments; say what it freed."""

from __future__ import annotations

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("clean")
@click.option("--all", "everything", is_flag=True,
              help="Also the last run's records and the hash and SIF caches (evidence is still kept).")
@click.option("--keep", type=click.IntRange(min=0), metavar="N",
              help="Keep the records of the N newest runs (default 1, 0 with --all).")
@click.option("--older-than", metavar="DURATION",
              help="Remove only runs that started longer ago than DURATION (e.g. 7d, 12h, 1h30m).")
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be removed.")
@project_dir
@json_output
def command(everything, keep, older_than, dry_run, project_dir, as_json):
    """Remove old run records (keeping the last run), caches and stale environments.

    Never removes the records an up-to-date result rests on: `status`, `logs` and `verify`
    still show a cached instance's evidence afterwards."""
    from repropack.human import fmt_bytes
    from repropack.run.clean import clean
    from repropack.run.lock import ProjectLock
    from repropack.run.runner import new_run_id

    seconds = _duration(older_than) if older_than is not None else None
    root = project_dir.resolve()
    with ProjectLock(root, "clean-" + new_run_id()):
        report = clean(root, everything=everything, dry_run=dry_run, keep=keep, older_than=seconds)
    if as_json:
        echo_json({"removed": [str(r.path.relative_to(root)) for r in report.removed], "files": report.files,
                   "bytes": report.bytes, "dry_run": dry_run,
                   "kept": [{"path": str(p.relative_to(root)), "reason": why} for p, why in report.kept]})
        return
    verb = "would free" if dry_run else "freed"
    click.echo(f"{verb} {fmt_bytes(report.bytes)} ({report.files} file(s) in {len(report.removed)} item(s) removed)")
    evidence = [(p, why) for p, why in report.kept if why.startswith("evidence")]
    for path, why in evidence:
        click.echo(f"kept {path.relative_to(root)}: {why}")


def _duration(text: str) -> float:
    from repropack.errors import UsageError
    from repropack.manifest.units import parse_seconds

    try:
        return float(parse_seconds(text))
    except ValueError as exc:
        raise UsageError(f"--older-than {text!r}: {exc}") from None
