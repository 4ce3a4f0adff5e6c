"""One exit-code table: errors.EXIT_CODES, the epilog of `repropack --help` and docs/cli.md agree."""

from __future__ import annotations

import re
from pathlib import Path

from repropack import errors
from repropack.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_help_ends_with_every_exit_code(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("Exit codes:"):].splitlines()[1:]
    rows = [tuple(line.split(None, 1)) for line in table if line.strip()]
    assert rows == [(str(code), meaning) for code, meaning in errors.EXIT_CODES]


def test_docs_table_is_the_same_table():
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", text, flags=re.M)
    assert rows == [(str(code), meaning) for code, meaning in errors.EXIT_CODES]


def test_codes_are_distinct_and_every_error_class_has_a_documented_one():
    codes = [code for code, _ in errors.EXIT_CODES]
    assert len(set(codes)) == len(codes)
    for cls in _subclasses(errors.ReproError):
        assert cls.exit_code in codes, cls


def test_the_collisions_of_the_issue_are_gone():
    assert errors.ManifestError.exit_code == errors.EXIT_MANIFEST == 3
    assert errors.StaleLockError.exit_code == errors.EXIT_LOCK == 4
    assert errors.ResourceRequestRefused.exit_code == errors.EXIT_RESOURCES == 5
    assert errors.RunInterrupted.exit_code == 130
    assert len({errors.UsageError.exit_code, errors.ManifestError.exit_code, errors.StaleLockError.exit_code,
                errors.ResourceRequestRefused.exit_code, errors.RunLocked.exit_code}) == 5
