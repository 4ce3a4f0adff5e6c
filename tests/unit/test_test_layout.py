"""The suite's own layout: pytest's default import mode needs a unique basename per test module."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique():
    # Two tests/**/test_x.py files make collection of the whole suite fail ("import file mismatch")
    # while each still passes when run alone, so a helper running only its own files never sees it.
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name.startswith("test_") or path.name in ("backendkit.py", "runhelp.py"):
            seen[path.name].append(str(path.relative_to(TESTS)))
    dupes = {name: places for name, places in seen.items() if len(places) > 1}
    assert not dupes, f"test modules sharing a basename: {dupes}"
