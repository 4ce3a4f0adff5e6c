"""``repropack verify``: hash the outputs again and compare with the last run or a checksum list."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._text import say
from repropack.cli._archive import allowed_signers, limits, limits_options
from repropack.cli._options import echo_json, json_output, project_dir


@click.command("verify")
@click.argument("archive", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--against", type=click.Path(dir_okay=False, path_type=Path),
              help="A checksum list (sha256sum format) to compare with instead of the last run.")
@allowed_signers
@limits_options
@project_dir
@json_output
def command(archive, against, allowed_signers, max_size, max_members, max_ratio, project_dir, as_json):
    """Hash every output again and compare with what the runs recorded (or with FILE).

    With ARCHIVE (a `repropack pack` file): check every member against its index and the
    signature, without extracting or running anything.
    """
    from repropack.errors import VerifyError

    if archive is not None:
        return verify_archive(archive, allowed_signers, limits(max_size, max_members, max_ratio), as_json)
    from repropack.run.verify import expected_digests, verify

    root = project_dir.resolve()
    expected = expected_digests(root, against)
    if not expected:
        raise VerifyError("nothing to verify: no finished run and no --against list")
    report = verify(root, expected)
    if as_json:
        echo_json(report)
    else:
        for entry in report["changed"]:
            say(f"CHANGED  {entry['path']}  (expected {entry['expected']}, found {entry['actual']})")
        for path in report["missing"]:
            say(f"MISSING  {path}")
        click.echo(f"{len(report['ok'])} ok, {len(report['changed'])} changed, {len(report['missing'])} missing",
                   err=True)
    bad = len(report["changed"]) + len(report["missing"])
    if bad:
        raise VerifyError(f"{bad} of {len(expected)} file(s) do not match")


def verify_archive(archive: Path, signers: Path | None, caps, as_json: bool) -> None:
    from repropack.archive.check import verify_archive as check
    from repropack.cli._archive import describe_parts
    from repropack.cli._bytes import byte_progress

    with byte_progress("verifying", None, quiet=as_json) as progress:
        verdict = check(archive, allowed_signers=signers, limits=caps, progress=progress)
    if as_json:
        echo_json(verdict.as_json())
        return
    say(f"{archive}: {len(verdict.contents.found)} members match the index (format {verdict.contents.index['format']})")
    for line in describe_parts(verdict.contents.index):
        say(line)
    say(verdict.trust.describe())
