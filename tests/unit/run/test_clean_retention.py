"""clean's retention rules over any set of runs: evidence is never removed, the N newest stay,
--older-than removes only older runs (a property test, fixed seed, on real folders)."""

from __future__ import annotations

import calendar
import json
import shutil
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.run.clean import clean
from repropack.run.journal import Journal

NOW = calendar.timegm(time.strptime("20261202T000000Z", "%Y%m%dT%H%M%SZ"))


def _run_id(days_ago: int, n: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(NOW - days_ago * 86400 - n)) + f"-{n:06x}"


RUNS = st.lists(st.tuples(st.integers(0, 30), st.booleans()), min_size=0, max_size=7)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(RUNS, st.integers(0, 4), st.one_of(st.none(), st.integers(1, 20)), st.booleans())
def test_retention_never_removes_evidence(tmp_path_factory, runs, keep, older_days, everything):
    root = tmp_path_factory.mktemp("clean")
    ids = sorted(_run_id(days, n) for n, (days, _) in enumerate(runs))
    evidence = {run_id for run_id, (_, holds) in zip(ids, sorted(runs)) if holds}
    for run_id in ids:
        folder = root / ".repropack" / "runs" / run_id
        (folder / "results").mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"format": 2, "run_id": run_id}))
    for n, run_id in enumerate(sorted(evidence)):
        with Journal(root / ".repropack" / "journal.jsonl", run_id) as journal:
            journal.append("done", id=f"i{n}", step="i", key="k", outputs={})
    older = older_days * 86400 if older_days is not None else None
    report = clean(root, keep=keep, older_than=older, everything=everything, now=NOW)
    left = {p.name for p in (root / ".repropack" / "runs").iterdir()} if ids else set()
    assert evidence <= left  # never removed
    assert set(ids[len(ids) - keep:] if keep else []) <= left  # the N newest stay
    for removal in (r for r in report.removed if r.path.parent.name == "runs"):
        started = calendar.timegm(time.strptime(removal.path.name[:16], "%Y%m%dT%H%M%SZ"))
        assert removal.path.name not in evidence
        assert older is None or NOW - started >= older
    assert report.files == sum(r.files for r in report.removed)
    shutil.rmtree(root)
