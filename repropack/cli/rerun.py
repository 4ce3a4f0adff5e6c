"""``repropack rerun ARCHIVE``: rerun a published workflow offline and compare every output."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._archive import allowed_signers, limits, limits_options
from repropack.cli._options import echo_json, json_output


@click.command("rerun")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", help="A profile of the archived manifest (host, docker, apptainer...); default: local.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to unpack and run (new or empty; default: ARCHIVE's name without .tar.zst, plus -rerun).")
@allowed_signers
@limits_options
@json_output
def command(archive, profile, directory, allowed_signers, max_size, max_members, max_ratio, as_json):
    """Unpack ARCHIVE, restore its environment from the bundled packages (or load its bundled image
    or SIF), run the workflow offline and compare every output with the published digest.

    Exits 0 only when every output is identical (or judged by a [compare] rule of the manifest);
    1 when any differs or is missing.
    """
    from repropack.archive.rerun import as_table, rerun
    from repropack.cli._bytes import byte_progress
    from repropack.cli._text import say
    from repropack.errors import VerifyError

    if directory is None:
        directory = Path.cwd() / (archive.name.removesuffix(".tar.zst").removesuffix(".tzst") + "-rerun")
    with byte_progress("unpacking", quiet=as_json) as progress:
        result = rerun(archive, directory, profile=profile, allowed_signers=allowed_signers,
                       limits=limits(max_size, max_members, max_ratio), progress=progress,
                       run_stdout=2 if as_json else None)  # the run talks on stderr: stdout is the JSON
    if as_json:
        echo_json(result.as_json())
    else:
        say(result.trust.describe(), err=True)
        for line in as_table(result):
            say(line)
    if result.run_status != 0:
        raise VerifyError(f"the workflow's run exited {result.run_status}; {result.differences} output(s) "
                          f"differ or are missing (the run is in {result.project})")
    if result.differences:
        raise VerifyError(f"{result.differences} of {len(result.outcomes)} output(s) differ or are missing")
    if not as_json:
        say(f"all {len(result.outcomes)} outputs identical to the published digests", err=True)
