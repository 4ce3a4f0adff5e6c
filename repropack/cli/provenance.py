"""``repropack provenance``: write (or refresh) the provenance crate and SBOMs of a run."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._options import echo_json, json_output, project_dir


@click.command("provenance")
@click.argument("run", required=False, metavar="[RUN]")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write into (default: .repropack/runs/<run-id>/provenance in the project).")
@project_dir
@json_output
def command(run, output, project_dir, as_json):
    """Write the Provenance Run Crate (ro-crate-metadata.json, RO-Crate 1.1) and a CycloneDX SBOM
    of each environment of RUN (default: the last run), from its records. `repropack run` writes
    them at its end; this refreshes them, e.g. for runs recorded before it did."""
    from repropack.provenance import write_provenance

    root = project_dir.resolve()
    out = None if output is None else (output if output.is_absolute() else Path.cwd() / output)
    written = write_provenance(root, run, out)
    if as_json:
        echo_json({"crate": str(written.crate), "actions": written.actions,
                   "sboms": {name: {"path": str(path), "packages": written.packages[name]}
                             for name, path in written.sboms.items()}})
        return
    click.echo(f"crate: {written.crate} ({written.actions} step action(s))")
    for name, path in written.sboms.items():
        click.echo(f"sbom {name}: {path} ({written.packages[name]} package(s))")
