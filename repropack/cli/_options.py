"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import click

project_dir = click.option(
    "-C",
    "--project-dir",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The project folder (the one holding repropack.toml).",
)

json_output = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")

offline = click.option("--offline", is_flag=True, help="Use only the local cache; never touch the network.")

frozen = click.option("--frozen", is_flag=True,
                      help="Download and install nothing: what the lock names must be fetched and created already.")


def verbosity(command):
    """-q (errors only) and -v (every artifact, instance or phase) for a long command."""
    command = click.option("-v", "--verbose", count=True, help="Say more: every artifact, instance or phase.")(command)
    return click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (and --json).")(command)


def echo_json(data: object) -> None:
    import json

    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
