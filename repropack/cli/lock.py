"""`repropack lock`: pin every package and the base image."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._complete import environment_names
from repropack.cli._options import echo_json, json_output, project_dir, verbosity


@click.command("lock")
@click.argument("environments", nargs=-1, metavar="[ENV]...", shell_complete=environment_names)
@click.option("--platform", "platforms", multiple=True, metavar="P",
              help="Solve only this platform (repeatable); the others keep their lock.")
@click.option("--update", "update", multiple=True, metavar="PKG",
              help="Let this package (and what it needs) move to its newest allowed version (repeatable).")
@click.option("--check", is_flag=True, help="Change nothing; fail if the lock is stale or was edited.")
@click.option("--base-override", metavar="IMAGE", default=None,
              help="Pin the base image to this local Docker image (env: REPROPACK_BASE_OVERRIDE).")
@click.option("--solver", type=click.Choice(["rattler", "conda-lock"]), default="rattler", show_default=True,
              help="conda solver: in-process rattler, or conda-lock (needs conda/mamba/micromamba).")
@project_dir
@json_output
@verbosity
def command(environments, platforms, update, check, base_override, solver, project_dir: Path, as_json, quiet,
            verbose) -> None:
    """Pin every environment (conda and PyPI) and the base image into repropack.lock and locks/."""
    from repropack.lock import ensure_fresh, lock_project
    from repropack.manifest import load_manifest

    manifest = load_manifest(project_dir)
    if check:
        lockset = ensure_fresh(manifest)
        if as_json:
            echo_json({"fresh": True, "environments": sorted(lockset.environments)})
        elif not quiet:
            click.echo(f"{manifest.root / 'repropack.lock'} is up to date", err=True)
        return
    report = lock_project(manifest, environments=environments, platforms=platforms, update=update,
                          base_override=base_override, solver=solver)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        echo_json({"solved": report.solved, "written": report.written, "warnings": report.warnings,
                   "base": {"reference": report.lockset.base.reference, "source": report.lockset.base.source,
                            "digest": report.lockset.base.digest}})
        return
    if quiet:
        return
    if verbose:
        for name in report.solved:
            click.echo(f"solved {name}", err=True)
    if not report.written:
        click.echo("lock unchanged", err=True)
    for path in report.written:
        click.echo(f"wrote {path}", err=True)
