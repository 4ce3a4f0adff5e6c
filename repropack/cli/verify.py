"""``repropack verify``: hash the outputs again and compare with the last run or a checksum list."""

from __future__ import annotations

from pathlib import Path

import click

from repropack.cli._text import say
from repropack.cli._options import echo_json, json_output, project_dir


def expected_digests(root: Path, against: Path | None) -> dict[str, str]:
    from repropack.run.checksums import parse_checksums
    from repropack.run.journal import load_state
    from repropack.run.runner import JOURNAL

    if against is not None:
        try:
            text = against.read_text(encoding="utf-8")
        except OSError as exc:
            from repropack.errors import UsageError

            raise UsageError(f"--against {against}: {exc.strerror}") from exc
        return parse_checksums(text, source=str(against), root=root)
    expected: dict[str, str] = {}
    for record in load_state(root / JOURNAL).done.values():
        expected.update(record.get("outputs") or {})
    return expected


def verify(root: Path, expected: dict[str, str]) -> dict[str, list]:
    """Rehash every listed file (no cache: this is the check) and sort them into ok/changed/missing.

    Files are read through descriptors opened beneath the project root, so an output later
    replaced by a link leading outside the project is reported changed without being read.
    """
    import stat

    from repropack.run.attempt import tree_digest
    from repropack.run.checksums import sha256_beneath
    from repropack.run.safepath import ProjectTree, UnsafePath

    report: dict[str, list] = {"ok": [], "changed": [], "missing": []}
    actual: dict[str, str] = {}
    files: list[str] = []
    with ProjectTree(root) as tree:
        for path in sorted(expected):
            try:
                st = tree.stat_beneath(path)
            except FileNotFoundError:
                report["missing"].append(path)
                continue
            except UnsafePath:
                actual[path] = "not read: it leads outside the project through a symbolic link"
                continue
            if stat.S_ISREG(st.st_mode):
                files.append(path)
            else:
                actual[path] = tree_digest(root / path)
        actual.update(zip(files, sha256_beneath(tree, files)))
    for path in sorted(actual):
        got, want = actual[path], expected[path]
        if got == want:
            report["ok"].append(path)
        else:
            report["changed"].append({"path": path, "expected": want, "actual": got})
    return report


@click.command("verify")
@click.option("--against", type=click.Path(dir_okay=False, path_type=Path),
              help="A checksum list (sha256sum format) to compare with instead of the last run.")
@project_dir
@json_output
def command(against, project_dir, as_json):
    """Hash every output again and compare with what the runs recorded (or with FILE)."""
    from repropack.errors import VerifyError

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
