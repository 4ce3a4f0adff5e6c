"""Verification: hash the outputs again and compare with what the runs recorded or a checksum list.

Library code for ``repropack verify``, provenance and the archive: :func:`expected_digests`
says what each output should hash to, :func:`verify` rehashes (no cache: this is the check)
and sorts the files into ok, changed and missing.
"""

from __future__ import annotations

import stat
from pathlib import Path

from repropack.run.journal import load_state
from repropack.run.lookup import JOURNAL


def expected_digests(root: Path, against: Path | None = None) -> dict[str, str]:
    """Project-relative path -> sha256, from ``against`` (sha256sum format) or the journal's done records."""
    from repropack.run.checksums import parse_checksums

    if against is not None:
        try:
            text = against.read_text(encoding="utf-8")
        except OSError as exc:
            from repropack.errors import UsageError

            raise UsageError(f"--against {against}: {exc.strerror}") from exc
        return parse_checksums(text, source=str(against), root=root)
    return recorded_digests(root)


def recorded_digests(root: Path) -> dict[str, str]:
    """Path -> digest of every output the journal calls up to date, as its run's records give it
    (read through the one reader, formats 1 and 2); the journal's own copy where they are gone."""
    from repropack.run.records.reader import open_run

    state = load_state(Path(root) / JOURNAL, last_run=False)
    by_run: dict[str, set[str]] = {}
    for iid, record in state.done.items():
        by_run.setdefault(record.get("run"), set()).add(iid)
    expected: dict[str, str] = {}
    for run_id in sorted(by_run, key=str):
        ids = by_run[run_id]
        try:
            view = open_run(root, run_id, only=ids)
        except FileNotFoundError:
            view = None
        for iid in sorted(ids):
            outputs = view.outputs(iid) if view is not None else []
            if outputs:
                expected.update((o.path, ("tree:" if o.type == "tree" else "") + o.sha256) for o in outputs if o.sha256)
            else:
                expected.update(state.done[iid].get("outputs") or {})
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


def result_problems(root: Path, outputs) -> list[str]:
    """Why a results record's outputs (reader ``Output`` entries) are not what is on disk now: one
    line per output that is missing or whose digest differs (the instance is then not done)."""
    expected = {o.path: ("tree:" if o.type == "tree" else "") + o.sha256 for o in outputs if o.sha256}
    if not expected:
        return []
    report = verify(root, expected)
    problems = [f"{path}: the results record names it, the file is missing" for path in report["missing"]]
    for entry in report["changed"]:
        problems.append(f"{entry['path']}: the results record says sha256 {entry['expected'][:16]}…, "
                        f"the file on disk has {entry['actual'][:16]}…")
    return problems


def stale_outputs(root: Path, outputs, hashes=None) -> list[str]:
    """Like :func:`result_problems`, through the stat-keyed hash cache (a file is read only when its
    stamp changed; the cache is not saved): what ``status`` can afford for every instance."""
    from repropack.run.keys import FileHashCache
    from repropack.run.safepath import UnsafePath

    hashes = hashes if hashes is not None else FileHashCache(root)
    problems = []
    for out in outputs:
        if out.type != "file" or not out.sha256:
            continue
        try:
            digest = hashes.digest(out.path)
        except (OSError, UnsafePath):
            problems.append(f"{out.path}: cannot be read beneath the project")
            continue
        if digest is None:
            problems.append(f"{out.path}: the results record names it, the file is missing")
        elif digest != out.sha256:
            problems.append(f"{out.path}: the results record says sha256 {out.sha256[:16]}…, "
                            f"the file on disk has {digest[:16]}…")
    return problems
