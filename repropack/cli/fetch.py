"""`repropack fetch`: every locked package into the verified cache."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from repropack.cli._options import echo_json, json_output, offline, project_dir


@click.command("fetch")
@click.argument("environments", nargs=-1, metavar="[ENV]...")
@click.option("-j", "--jobs", default=8, show_default=True, help="Parallel downloads.")
@project_dir
@offline
@json_output
def command(environments, jobs: int, project_dir: Path, offline: bool, as_json: bool) -> None:
    """Download every locked artifact into the content-addressed cache, verifying sha256."""
    from repropack.lock import ensure_fresh, fetch
    from repropack.lock.cache import ArtifactCache
    from repropack.manifest import load_manifest

    manifest = load_manifest(project_dir)
    lockset = ensure_fresh(manifest)
    cache = ArtifactCache()
    reporter = _RichReporter() if sys.stderr.isatty() and not as_json else None
    try:
        report = fetch(lockset, offline, manifest=manifest, environments=environments or None,
                       cache=cache, jobs=jobs, reporter=reporter)
    finally:
        if reporter:
            reporter.close()
    if as_json:
        echo_json({"cache": str(cache.root), "downloaded": len(report.downloaded), "cached": len(report.cached),
                   "bytes": report.bytes})
    else:
        click.echo(f"{len(report.downloaded)} downloaded ({report.bytes / 1e6:.1f} MB), "
                   f"{len(report.cached)} already cached in {cache.root}")


class _RichReporter:
    """A progress bar on stderr: files done and megabytes received (threads report concurrently)."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("fetching"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[mb]:.1f} MB"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
        self.task = None
        self.received = 0

    def on_start(self, artifacts) -> None:
        self.progress.start()
        self.task = self.progress.add_task("fetch", total=len(artifacts), mb=0.0)

    def on_bytes(self, count: int) -> None:
        self.received += count
        self.progress.update(self.task, mb=self.received / 1e6)

    def on_done(self, artifact, cached: bool) -> None:
        self.progress.advance(self.task, 1)

    def close(self) -> None:
        self.progress.stop()
