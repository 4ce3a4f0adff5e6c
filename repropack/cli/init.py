"""``repropack init``: write a first repropack.toml (never over an existing one)."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._options import project_dir


@click.command("init")
@click.option("--from", "source", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take the environment from environment.yml, requirements.txt or pyproject.toml.")
@click.option("--name", help="The project name (default: the folder's name).")
@project_dir
def command(source: Path | None, name: str | None, project_dir: Path) -> None:
    """Write repropack.toml in the project folder, with comments that explain it."""
    from repropack.manifest.scaffold import write_initial

    path = write_initial(project_dir, source=source, name=name)
    click.echo(f"wrote {path}")
    click.echo("next: add [[steps]], then `repropack check` and `repropack lock`")
