"""``repropack clean``: remove run directories, caches and stale environments; say what it freed."""

from __future__ import annotations

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("clean")
@click.option("--all", "everything", is_flag=True, help="Also the last run's directory and the hash and SIF caches.")
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be removed.")
@project_dir
@json_output
def command(everything, dry_run, project_dir, as_json):
    """Remove old run directories (keeping the last run), caches and stale environments."""
    from repropack.run.lock import ProjectLock
    from repropack.run.runner import new_run_id
    from repropack.human import fmt_bytes
    from repropack.run.clean import clean

    root = project_dir.resolve()
    with ProjectLock(root, "clean-" + new_run_id()):
        removed = clean(root, everything=everything, dry_run=dry_run)
    total = sum(size for _, size in removed)
    if as_json:
        echo_json({"removed": [str(p.relative_to(root)) for p, _ in removed], "bytes": total, "dry_run": dry_run})
        return
    verb = "would free" if dry_run else "freed"
    click.echo(f"{verb} {fmt_bytes(total)} ({len(removed)} item(s) removed)")
