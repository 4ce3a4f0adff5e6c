"""``repropack check [DIR]``: validate the manifest and print every problem, one per line."""

from __future__ import annotations

import os
from pathlib import Path

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@project_dir
@json_output
def command(directory: Path | None, project_dir: Path, as_json: bool) -> None:
    """Validate the manifest (DIR, else the project folder) and print every problem found.

    Each problem is one line: FILE:LINE:COLUMN: KEY: MESSAGE. Exits 3 if there is any.
    """
    from repropack.manifest.loader import check_manifest

    manifest, errors = check_manifest(directory if directory is not None else project_dir)
    summary = _summary(manifest) if manifest is not None else None
    if as_json:
        echo_json({"ok": not errors, "problems": [_record(e) for e in errors], "summary": summary})
    elif errors:
        for error in errors:
            click.echo(problem_line(error))
        click.echo(f"{len(errors)} problem(s)", err=True)
    else:
        assert manifest is not None and summary is not None
        click.echo(f"{_shown(manifest.path)}: ok ({summary['steps']} steps, {summary['instances']} instances, "
                   f"{summary['environments']} environments)")
    if errors:
        from repropack.errors import EXIT_MANIFEST

        raise click.exceptions.Exit(EXIT_MANIFEST)


def problem_line(error) -> str:
    where = _shown(error.path) if error.path is not None else ""
    if error.line is not None:
        where += f":{error.line}" + (f":{error.column}" if error.column is not None else "")
    parts = [p for p in (where, error.key) if p]
    text = error.reason + (f" ({error.hint})" if error.hint else "")
    return ": ".join(parts + [text])


def _record(error) -> dict:
    return {
        "path": str(error.path) if error.path is not None else None,
        "line": error.line,
        "column": error.column,
        "key": error.key,
        "message": error.reason,
        "hint": error.hint,
    }


def _summary(manifest) -> dict:
    from repropack.manifest.dag import expand

    return {
        "path": str(manifest.path),
        "project": manifest.project.name,
        "steps": len(manifest.steps),
        "instances": len(expand(manifest)),
        "environments": len(manifest.environments),
    }


def _shown(path: Path) -> str:
    """Relative to the current folder when inside it: shorter, and what editors jump to."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return relative if not relative.startswith("..") else str(path)
