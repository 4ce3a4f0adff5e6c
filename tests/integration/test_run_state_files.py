"""Issue 8 defect 6: state files under .repropack/ are never followed through a link.

A journal, lock, hash cache or `latest` marker that is a link to a file outside the project (or
a .repropack/ that is a link to a folder outside) is refused with one line naming it; the
outside file or folder is left exactly as it was (sentinel: inode, size, mtime, sha256).
"""

from __future__ import annotations

import os

import pytest
from runhelp import repropack, sentinel, write_project

MANIFEST = """
[project]
name = "p"
[[steps]]
name = "a"
run = "echo a > {outputs}"
outputs = ["out/a"]
"""


@pytest.fixture
def project(tmp_path):
    root = write_project(tmp_path / "p", MANIFEST)
    outside = tmp_path / "outside"
    outside.mkdir()
    # a last line without its newline: the journal's repair would cut it
    (outside / "file").write_text('{"v":1,"t":"run","run":"x"}\nprecious, no newline')
    return root, outside


def _refused(done, name):
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"{name} is a symbolic link" in lines[0]


@pytest.mark.parametrize("name", [
    ".repropack/journal.jsonl", ".repropack/run.lock", ".repropack/cache/filehash.json", ".repropack/runs/latest",
])
def test_defect06_a_state_file_linked_outside_is_refused_and_left_alone(project, name):
    root, outside = project
    repropack(root, "run", check=True)  # a first run makes every state file
    (root / "out/a").unlink()
    (root / name).unlink()
    os.symlink(outside / "file", root / name)
    before = sentinel(outside)
    done = repropack(root, "run")
    assert sentinel(outside) == before
    _refused(done, name)
    assert not (root / "out/a").exists()  # nothing ran


def test_defect06_the_journal_link_is_refused_by_readers_too(project):
    root, outside = project
    repropack(root, "run", check=True)
    (root / ".repropack/journal.jsonl").unlink()
    os.symlink(outside / "file", root / ".repropack/journal.jsonl")
    before = sentinel(outside)
    for command in (["status", "--json"], ["verify"]):
        _refused(repropack(root, *command), ".repropack/journal.jsonl")
    assert sentinel(outside) == before


@pytest.mark.parametrize("first_run", [False, True])
def test_defect06_a_repropack_folder_linked_outside_is_refused(project, first_run):
    root, outside = project
    if first_run:
        repropack(root, "run", check=True)
        os.rename(root / ".repropack", outside / "state")
    else:
        (outside / "state").mkdir()
    os.symlink(outside / "state", root / ".repropack")
    before = sentinel(outside)
    for command in (["run"], ["clean", "--all"], ["status", "--json"]):
        done = repropack(root, *command)
        assert sentinel(outside) == before, command
        _refused(done, ".repropack")


def test_defect06_a_state_folder_linked_outside_is_refused(project):
    root, outside = project
    repropack(root, "run", check=True)
    (outside / "runs").mkdir()
    (outside / "runs" / "keep").write_text("keep")
    os.rename(root / ".repropack/runs", outside / "old-runs")
    os.symlink(outside / "runs", root / ".repropack/runs")
    before = sentinel(outside)
    for command in (["run"], ["clean", "--all"]):
        done = repropack(root, *command)
        assert sentinel(outside) == before, command
        _refused(done, ".repropack/runs")


def test_defect06_a_fifo_where_the_journal_belongs_is_refused_without_hanging(project):
    root, _ = project
    repropack(root, "run", check=True)
    (root / ".repropack/journal.jsonl").unlink()
    os.mkfifo(root / ".repropack/journal.jsonl")
    done = repropack(root, "run", timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert ".repropack/journal.jsonl is not a regular file" in done.stderr
