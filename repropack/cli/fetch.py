"""`repropack fetch`: every locked package into the verified cache."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._complete import environment_names
from repropack.cli._options import echo_json, json_output, offline, project_dir, verbosity


@click.command("fetch")
@click.argument("environments", nargs=-1, metavar="[ENV]...", shell_complete=environment_names)
@click.option("-j", "--jobs", default=8, show_default=True, help="Parallel downloads.")
@project_dir
@offline
@json_output
@verbosity
def command(environments, jobs: int, project_dir: Path, offline: bool, as_json: bool, quiet: bool, verbose: int) -> None:
    """Download every locked artifact into the content-addressed cache, verifying sha256."""
    from repropack.cli._fetching import fetch_reporter
    from repropack.human import fmt_bytes, fmt_seconds
    from repropack.lock import ensure_fresh, fetch
    from repropack.lock.cache import ArtifactCache
    from repropack.manifest import load_manifest

    manifest = load_manifest(project_dir)
    lockset = ensure_fresh(manifest)
    cache = ArtifactCache()
    reporter = fetch_reporter(as_json=as_json, quiet=quiet, verbose=verbose, summary=False)
    try:
        report = fetch(lockset, offline, manifest=manifest, environments=environments or None,
                       cache=cache, jobs=jobs, reporter=reporter)
    finally:
        reporter.close()
    if as_json:
        echo_json({"cache": str(cache.root), "downloaded": len(report.downloaded), "cached": len(report.cached),
                   "bytes": report.bytes})
    elif not quiet:
        click.echo(f"{len(report.downloaded)} downloaded ({fmt_bytes(report.bytes)} in "
                   f"{fmt_seconds(reporter.elapsed())}), {len(report.cached)} already cached in {cache.root}",
                   err=True)
