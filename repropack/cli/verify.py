"""``repropack verify``: hash the outputs again and compare with the last run or a checksum list."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._text import say
from repropack.cli._options import echo_json, json_output, project_dir


@click.command("verify")
@click.option("--against", type=click.Path(dir_okay=False, path_type=Path),
              help="A checksum list (sha256sum format) to compare with instead of the last run.")
@project_dir
@json_output
def command(against, project_dir, as_json):
    """Hash every output again and compare with what the runs recorded (or with FILE)."""
    from repropack.errors import VerifyError

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
