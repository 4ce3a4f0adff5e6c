"""Verification: hash the outputs again and compare with what the runs recorded or a checksum list.

Library code for ``repropack verify``, provenance and the archive: :func:`expected_digests`
says what each output should hash to, :func:`verify` rehashes (no cache: this is the check)
and sorts the files into ok, changed and missing.
"""

from __future__ import annotations

import stat
from pathlib import Path

from repropack.run.lookup import JOURNAL


def expected_digests(root: Path, against: Path | None = None) -> dict[str, str]:
    """Project-relative path -> sha256, from ``against`` (sha256sum format) or the journal's done records."""
    from repropack.run.checksums import parse_checksums
    from repropack.run.journal import load_state

    if against is not None:
        try:
            text = against.read_text(encoding="utf-8")
        except OSError as exc:
            from repropack.errors import UsageError

            raise UsageError(f"--against {against}: {exc.strerror}") from exc
        return parse_checksums(text, source=str(against), root=root)
    expected: dict[str, str] = {}
    for record in load_state(Path(root) / JOURNAL).done.values():
        expected.update(record.get("outputs") or {})
    return expected


def verify(root: Path, expected: dict[str, str]) -> dict[str, list]:
    """Rehash every listed file and sort them into ``ok`` / ``changed`` / ``missing``.

    Files are read through descriptors opened beneath the project root, so an output later
    replaced by a link leading outside the project is reported changed without being read.
    """
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
                actual[path] = tree_digest(Path(root) / path)
        actual.update(zip(files, sha256_beneath(tree, files)))
    for path in sorted(actual):
        got, want = actual[path], expected[path]
        if got == want:
            report["ok"].append(path)
        else:
            report["changed"].append({"path": path, "expected": want, "actual": got})
    return report
