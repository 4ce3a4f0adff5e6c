"""``repropack unpack ARCHIVE DIR``: extract a publication archive safely."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._archive import allowed_signers, limits, limits_options
from repropack.cli._options import echo_json, json_output


@click.command("unpack")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Extract into a folder that is not empty (same names are replaced).")
@allowed_signers
@limits_options
@json_output
def command(archive, directory, force, allowed_signers, max_size, max_members, max_ratio, as_json):
    """Extract ARCHIVE into DIR after checking every member against its index.

    Absolute paths, '..', links leading out, hard links, devices, FIFOs and setuid/setgid bits are
    refused; so are archives over the size, member-count or compression-ratio caps. Nothing is left
    in DIR when the archive is refused.
    """
    from repropack.archive.check import trust_checker
    from repropack.archive.unpack import unpack
    from repropack.cli._bytes import byte_progress
    from repropack.cli._text import say

    found: list = []
    with byte_progress("unpacking", None, quiet=as_json) as progress:
        contents = unpack(archive, directory, force=force, limits=limits(max_size, max_members, max_ratio),
                          trust=trust_checker(archive, allowed_signers, found), progress=progress)
    trust = found[0]
    if as_json:
        echo_json({"archive": str(archive), "directory": str(directory), "members": len(contents.found),
                   "signature": {"status": trust.status, "key": trust.key, "principal": trust.principal}})
        return
    say(f"unpacked {len(contents.found)} members into {directory}", err=True)
    say(trust.describe(), err=True)
