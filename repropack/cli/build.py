"""``repropack build``: a reproducible Docker image and Apptainer SIF from the lock."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("build")
@project_dir
@click.option("--docker/--no-docker", "docker", default=None, help="Load the image into Docker (the default, unless --apptainer is given alone).")
@click.option("--apptainer", is_flag=True, help="Also build an Apptainer SIF from the same image.")
@click.option("--tag", "-t", metavar="NAME[:TAG]", help="Image name (default: [image].name or the project name, tagged with its version).")
@click.option("--push", metavar="HOST[:PORT][/NAMESPACE]", help="Push to this registry through its HTTP API (same digest every rebuild).")
@click.option("--containerfile", is_flag=True, help="Render a Containerfile from templates and build it with Docker (not bit-for-bit reproducible).")
@click.option("--allow-large", is_flag=True, help="Put workflow files over the size limit into the image anyway.")
@json_output
def command(project_dir: Path, docker: bool | None, apptainer: bool, tag: str | None, push: str | None,
            containerfile: bool, allow_large: bool, as_json: bool) -> None:
    """Build the image from repropack.lock (refusing a stale lock), offline from the verified cache.

    \b
    Layers: the pinned base, one per environment at /opt/envs/<name>, then the
    workflow's declared files at [image].workdir. The same lock and files give
    the same image ID, pushed digest and SIF content on every rebuild.
    """
    from repropack.build.builder import BuildOptions

    if docker is None:  # `build --apptainer` alone makes only the SIF
        docker = not apptainer
    options = BuildOptions(docker=docker, apptainer=apptainer, tag=tag, push=push, allow_large=allow_large)
    with _progress(enabled=not as_json) as report:
        if containerfile:
            from repropack.build.containerfile import build_with_containerfile

            record = build_with_containerfile(project_dir, options, report=report)
        else:
            from repropack.build.pipeline import build

            record = build(project_dir, options, report=report)
    for warning in record.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        echo_json(record)
    else:
        _summary(record)


class _progress:
    """A rich status line on a terminal; silent otherwise."""

    def __init__(self, *, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.status = None

    def __enter__(self):
        if not self.enabled:
            return lambda _message: None
        from rich.console import Console

        self.status = Console(stderr=True).status("building")
        self.status.__enter__()
        return lambda message: self.status.update(message)

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)
        return False


def _summary(record: dict) -> None:
    image = record["image"]
    reused = sum(1 for layer in image["layers"] if layer["reused"])
    click.echo(f"image    {image['reference']}  {image['id']}")
    if image.get("reproducible") is False:
        click.echo(f"built    by docker build from {image['containerfile']} (not bit-for-bit reproducible)")
    else:
        click.echo(f"layers   {len(image['base']['layers'])} base + {len(image['layers'])} ({reused} reused), "
                   f"{image['size'] / 1e6:.1f} MB")
    if record.get("pushed"):
        click.echo(f"pushed   {record['pushed']['reference']}")
    if record.get("sif"):
        sif = record["sif"]
        click.echo(f"sif      {sif['path']}  content {sif['content_digest']}")
    click.echo(f"record   {record['path']}  ({record['durations']['total']:.1f} s)")
