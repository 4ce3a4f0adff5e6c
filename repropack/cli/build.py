"""``repropack build``: a reproducible Docker image and Apptainer SIF from the lock."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from repropack.cli._options import echo_json, frozen, json_output, offline, project_dir, verbosity


@click.command("build")
@project_dir
@click.option("--docker/--no-docker", "docker", default=None, help="Load the image into Docker (the default, unless --apptainer is given alone).")
@click.option("--apptainer", is_flag=True, help="Also build an Apptainer SIF from the same image.")
@click.option("--tag", "-t", metavar="NAME[:TAG]", help="Image name (default: [image].name or the project name, tagged with its version).")
@click.option("--push", metavar="HOST[:PORT][/NAMESPACE]", help="Push to this registry through its HTTP API (same digest every rebuild).")
@click.option("--containerfile", is_flag=True, help="Render a Containerfile from templates and build it with Docker (not bit-for-bit reproducible).")
@click.option("--allow-large", is_flag=True, help="Put workflow files over the size limit into the image anyway.")
@json_output
@offline
@frozen
@verbosity
def command(project_dir: Path, docker: bool | None, apptainer: bool, tag: str | None, push: str | None,
            containerfile: bool, allow_large: bool, as_json: bool, offline: bool, frozen: bool, quiet: bool,
            verbose: int) -> None:
    """Build the image from repropack.lock (refusing a stale lock), offline from the verified cache.

    \b
    Layers: the pinned base, one per environment at /opt/envs/<name>, then the
    workflow's declared files at [image].workdir. The same lock and files give
    the same image ID, pushed digest and SIF content on every rebuild. An environment
    layer not built before is staged from the cache, fetching what it lacks first
    (--offline: from the cache only).
    """
    from repropack.build.builder import BuildOptions
    from repropack.cli._fetching import StatusFetch
    from repropack.lock.provision import Provision

    if docker is None:  # `build --apptainer` alone makes only the SIF
        docker = not apptainer
    progress = _progress(enabled=not (as_json or quiet), verbose=verbose)
    provision = Provision.from_flags(offline=offline, frozen=frozen, reporter=StatusFetch(progress.say, quiet=quiet))
    options = BuildOptions(docker=docker, apptainer=apptainer, tag=tag, push=push, allow_large=allow_large,
                           provision=provision)
    with progress as report:
        if containerfile:
            from repropack.build.containerfile import build_with_containerfile

            record = build_with_containerfile(project_dir, options, report=report)
        else:
            from repropack.build.pipeline import build

            record = build(project_dir, options, report=report)
    for warning in record.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    provision.reporter.close()
    if as_json:
        echo_json(record)
    elif not quiet:
        _summary(record, verbose)


class _progress:
    """The build's phases: a rich status line on a terminal; plain lines with -v otherwise; else silent."""

    def __init__(self, *, enabled: bool, verbose: int = 0):
        self.live = enabled and sys.stderr.isatty()
        self.lines = enabled and not self.live and verbose > 0
        self.status = None
        self.t0 = time.monotonic()

    def say(self, message: str) -> None:
        if self.status is not None:
            self.status.update(message)
        elif self.lines:
            click.echo(f"[{time.monotonic() - self.t0:5.1f} s] {message}", err=True)

    def __enter__(self):
        if self.live:
            from rich.console import Console

            self.status = Console(stderr=True).status("building")
            self.status.__enter__()
        return self.say

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)
        return False


def _summary(record: dict, verbose: int = 0) -> None:
    """What was built, on stderr (--json puts the whole record on stdout instead)."""
    from functools import partial

    from repropack.human import fmt_bytes, fmt_seconds

    say = partial(click.echo, err=True)
    image = record["image"]
    reused = sum(1 for layer in image["layers"] if layer["reused"])
    say(f"image    {image['reference']}  {image['id']}")
    if image.get("reproducible") is False:
        say(f"built    by docker build from {image['containerfile']} (not bit-for-bit reproducible)")
    else:
        say(f"layers   {len(image['base']['layers'])} base + {len(image['layers'])} ({reused} reused), "
            f"{fmt_bytes(image['size'])}")
        for layer in image["layers"] if verbose else ():
            say(f"  {fmt_bytes(layer['size']):>9}  {'reused' if layer['reused'] else 'built '}  {layer['created_by']}")
    if record.get("pushed"):
        say(f"pushed   {record['pushed']['reference']}")
    if record.get("sif"):
        sif = record["sif"]
        say(f"sif      {sif['path']}  content {sif['content_digest']}")
    say(f"record   {record['path']}  ({fmt_seconds(record['durations']['total'])})")
