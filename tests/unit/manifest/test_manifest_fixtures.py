"""Every fixture project under tests/fixtures/manifests is refused with the problems in its
expected-error.txt (location, dotted key and the start of the message), and nothing is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from repropack.cli import main
from repropack.errors import ManifestError
from repropack.manifest import load_manifest
from repropack.manifest.loader import check_manifest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "manifests"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected-error.txt").is_file())


def shown(error: ManifestError, root: Path) -> str:
    where = ""
    if error.path is not None:
        where = os.path.relpath(error.path, root)
        if error.line is not None:
            where += f":{error.line}" + (f":{error.column}" if error.column is not None else "")
    return ": ".join(p for p in (where, error.key, error.reason) if p)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    target = tmp_path / request.param
    shutil.copytree(FIXTURES / request.param, target)
    return target


def test_there_are_fixtures():
    assert len(CASES) >= 40


@pytest.mark.parametrize("project", CASES, indirect=True)
def test_fixture_problems(project: Path):
    expected = [line for line in (project / "expected-error.txt").read_text().splitlines() if line]
    manifest, errors = check_manifest(project)
    assert manifest is None
    got = [shown(e, project) for e in errors]
    assert len(got) == len(expected), got
    for want, line in zip(expected, got):
        if want.startswith("no repropack.toml"):
            want = want.split(" /", 1)[0]
        assert line.startswith(want), (line, want)


@pytest.mark.parametrize("project", CASES, indirect=True)
def test_fixture_refused_by_load_and_check_without_writing(project: Path, capsys):
    before = snapshot(project)
    with pytest.raises(ManifestError) as info:
        load_manifest(project)
    first = info.value
    if first.line is not None:
        assert f":{first.line}:" in str(first)
    if first.key is not None:
        assert f": {first.key}: " in str(first)
    assert main(["check", str(project)]) == 3
    out = capsys.readouterr()
    assert out.out.strip() or "no repropack.toml" in out.err
    assert snapshot(project) == before
