"""Fixtures of the conformance suite: each backend under test as a kit (see backendkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from backendkit import FakeKit, Kit, LocalKit


@pytest.fixture(params=["fake", "local"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Kit:
    root = tmp_path / "project"
    root.mkdir()
    return {"fake": FakeKit, "local": LocalKit}[request.param](root)
