"""Errors instead of tracebacks, and state that survives them (issue 8, defect 10).

Every case ends in one ``error:`` line naming the file or key, with a documented exit
code, and leaves the journal, the hash cache and the run directories usable: the next
run works without any repair by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from runhelp import repropack, write_project

from repropack.errors import EXIT_MANIFEST, EXIT_STORAGE

COPY = """
    [project]
    name = "p"
    [[steps]]
    name = "copy"
    run = "cat in.txt > {outputs}"
    inputs = ["in.txt"]
    outputs = ["out/copy.txt"]
"""


def _one_line_error(done: subprocess.CompletedProcess, *needles: str) -> str:
    """The error line; fails on a traceback or an error that does not name what it should."""
    assert "Traceback" not in done.stderr, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def _states(root: Path) -> dict:
    done = repropack(root, "status", "--json", check=True)
    return {iid: e["state"] for iid, e in json.loads(done.stdout)["instances"].items()}


def test_defect10_directory_output_is_checked_on_the_next_run(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "tree"
        run = "mkdir -p {outputs}/sub && echo one > {outputs}/sub/f"
        outputs = ["out/tree"]
    """)
    repropack(root, "run", check=True)
    again = repropack(root, "run", check=True)
    assert "1 skipped" in again.stderr and "Traceback" not in again.stderr
    (root / "out/tree/sub/f").write_text("edited\n")
    assert repropack(root, "run", "--dry-run").stdout.count("output out/tree modified") == 1
    repropack(root, "run", check=True)
    assert (root / "out/tree/sub/f").read_text() == "one\n"


def test_defect10_file_output_replaced_by_a_directory(tmp_path):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    repropack(root, "run", check=True)
    (root / "out/copy.txt").unlink()
    (root / "out/copy.txt").mkdir()
    (root / "out/copy.txt/mine").write_text("keep me\n")
    done = repropack(root, "run")
    assert done.returncode == 1
    _one_line_error(done, "copy")
    assert "out/copy.txt is a folder" in done.stderr
    assert (root / "out/copy.txt/mine").read_text() == "keep me\n"  # nothing of the user's is deleted
    shutil.rmtree(root / "out/copy.txt")
    repropack(root, "run", check=True)
    assert (root / "out/copy.txt").read_text() == "hi\n"


@pytest.mark.parametrize("params", [
    "p = " + "{a = " * 500 + "1" + "}" * 500,  # inline tables: tomllib itself recurses
    "p = " + "[" * 500 + "1" + "]" * 500,
    "[params." + ".".join(["a"] * 500) + "]\nv = 1",  # dotted: parses, but 500 levels deep
])
def test_defect10_params_nested_too_deep(tmp_path, params):
    root = tmp_path / "p"
    root.mkdir()
    header = "[params]\n" if not params.startswith("[") else ""
    (root / "repropack.toml").write_text(f'[project]\nname = "p"\n{header}{params}\n[[steps]]\nname = "s"\n'
                                         f'run = "echo hi > {{outputs}}"\noutputs = ["o.txt"]\n')
    checked = repropack(root, "check")
    assert checked.returncode == EXIT_MANIFEST and "Traceback" not in checked.stderr
    assert "repropack.toml" in checked.stdout + checked.stderr and "nested more than 32 levels" in checked.stdout + checked.stderr
    done = repropack(root, "run")
    assert done.returncode == EXIT_MANIFEST
    _one_line_error(done, "repropack.toml", "nested more than 32 levels")


def _require_root(why: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root: {why}")


def test_defect10_read_only_project(tmp_path):
    _require_root("a read-only bind mount")
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "--bind", str(root), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        for args in (("run",), ("clean",)):
            done = repropack(ro, *args)
            assert done.returncode == EXIT_STORAGE, (args, done.stderr)
            _one_line_error(done, ".repropack", "Read-only file system")
        # What only reads still works there.
        assert repropack(ro, "check").returncode == 0
        assert "run  copy" in repropack(ro, "run", "--dry-run", check=True).stdout
        assert repropack(ro, "status", check=True).stdout.startswith("no run yet")
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    repropack(root, "run", check=True)  # the same project, writable again: nothing to repair
    assert (root / "out/copy.txt").read_text() == "hi\n"


def test_defect10_unreadable_input(tmp_path):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    os.chmod(root / "in.txt", 0)
    # As root, drop the capabilities that ignore file modes, so the mode is what a user meets.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    if prefix and not shutil.which("setpriv"):
        pytest.skip("needs setpriv to drop root's file-mode override")
    from runhelp import CLI

    done = subprocess.run([*prefix, *CLI, "run", "-C", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_STORAGE, done.stderr
    _one_line_error(done, "in.txt", "Permission denied")
    os.chmod(root / "in.txt", 0o644)
    repropack(root, "run", check=True)


def _filehash(root: Path) -> Path:
    return root / ".repropack" / "cache" / "filehash.json"


@pytest.mark.parametrize("entry", ["short", "int", "digest-int", "table", "none"])
def test_defect10_crafted_hash_cache_entry(tmp_path, entry):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    repropack(root, "run", check=True)
    (root / "in.txt").write_text("ho\n")  # same size: only the digest can tell
    st = os.stat(root / "in.txt")
    data = json.loads(_filehash(root).read_text())
    data["entries"]["in.txt"] = {"short": [st.st_size], "int": 5, "digest-int": [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, 5],
                                 "table": {"a": 1}, "none": None}[entry]
    _filehash(root).write_text(json.dumps(data))
    done = repropack(root, "run")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (root / "out/copy.txt").read_text() == "ho\n"  # rehashed, never a stale reuse


@pytest.mark.parametrize("text", ["not json {", "[]", '{"version": 1, "entries": []}', '{"version": 1, "entries": {"in.txt": "x"}}'])
def test_defect10_damaged_hash_cache_file(tmp_path, text):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    repropack(root, "run", check=True)
    _filehash(root).write_text(text)
    done = repropack(root, "run")
    assert done.returncode == 0 and "1 skipped" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_defect10_corrupted_journal_lines_in_the_middle(tmp_path):
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    repropack(root, "run", check=True)
    repropack(root, "run", "--no-resume", check=True)
    journal = root / ".repropack" / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    bad = [b'{"t":"done","run":"x"}\n', b"not json\n", b"[1,2]\n", b'{"t":"done","id":5}\n',
           b'{"t":"done","id":"copy","outputs":"zz","key":3}\n', b'{"t":"run"}\n', b'{"t":"failed","id":"copy","run":null}\n',
           b"\xff\xfe garbage\n", b'{"t":"start","id":["x"],"run":"y"}\n', b'"just a string"\n']
    middle = len(lines) // 2
    journal.write_bytes(b"".join(lines[:middle] + bad + lines[middle:]))
    for args in (("status",), ("status", "--json"), ("run", "--dry-run"), ("logs", "copy"), ("report", "--json")):
        done = repropack(root, *args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
    done = repropack(root, "run", check=True)
    assert "1 skipped" in done.stderr
    with journal.open("ab") as handle:  # damaged lines at the end, too
        handle.write(b'{"t":"done","id":"copy","outputs":"zz","key":3,"run":"zz"}\n{"t":"end"}\n')
    assert "1 skipped" in repropack(root, "run", check=True).stderr  # the damaged done record is not taken
    assert set(_states(root)) == {"copy"}


def test_defect10_wrong_type_deep_in_a_table(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [profiles.p]
        env = "AWS_PROFILE"
        [[steps]]
        name = "s"
        run = "echo hi > {outputs}"
        outputs = ["o.txt"]
        resources = {memory = [1]}
    """)
    for command in ("check", "run"):
        done = repropack(root, command)
        assert done.returncode == EXIT_MANIFEST and "Traceback" not in done.stderr
        shown = done.stdout + done.stderr
        assert "profiles.p.env" in shown and "steps[0].resources.memory" in shown


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs holding the project (root only)."""
    _require_root("mounting a small tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(path: Path) -> None:
    """Fill the file system holding ``path`` to the last byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 16, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)


def test_defect10_full_disk_errors_cleanly_and_recovers(small_disk):
    root = write_project(small_disk / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "big"
        run = "head -c 2000000 /dev/urandom > {outputs}"
        outputs = ["big.bin"]
        [[steps]]
        name = "small"
        run = "wc -c < {inputs} > {outputs}"
        inputs = ["big.bin"]
        outputs = ["small.txt"]
    """)
    (small_disk / "filler").write_bytes(b"\0" * 2_500_000)
    first = repropack(root, "run")  # the step itself runs out of space: a step failure
    assert first.returncode != 0
    _one_line_error(first)
    second = repropack(root, "run")  # the disk is still full: now the runner's own writes fail
    assert second.returncode != 0
    _one_line_error(second, "No space left on device")
    # the failed attempt's partial output went with its slot (format 2): nothing of it is left to clean
    assert sum(p.stat().st_size for p in (root / ".repropack" / "runs").rglob("*") if p.is_file()) < 1_000_000
    json.loads(repropack(root, "clean", "--json", check=True).stdout)
    _fill(small_disk / "filler2")
    full = repropack(root, "run")
    assert full.returncode == EXIT_STORAGE, full.stderr
    _one_line_error(full, "No space left on device")
    assert not list(root.rglob("*.tmp")) and not list(root.rglob(".latest.*"))
    (small_disk / "filler").unlink()
    (small_disk / "filler2").unlink()
    done = repropack(root, "run")
    assert done.returncode == 0, done.stderr
    assert (root / "small.txt").read_text().strip() == "2000000"
    assert _states(root) == {"big": "done", "small": "done"}
    assert repropack(root, "verify").returncode == 0
    assert "2 skipped" in repropack(root, "run", check=True).stderr


def test_defect10_other_commands_on_a_read_only_project_or_unreadable_output(tmp_path):
    _require_root("a read-only bind mount")
    root = write_project(tmp_path / "p", COPY, {"in.txt": "hi\n"})
    repropack(root, "run", check=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "--bind", str(root), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        for args in (("report",), ("lock",)):
            done = repropack(ro, *args)
            assert done.returncode == EXIT_STORAGE, (args, done.stderr)
            _one_line_error(done, "Read-only file system")
        assert repropack(ro, "verify").returncode == 0
    finally:
        subprocess.run(["umount", str(ro)], check=True)
    os.chmod(root / "out/copy.txt", 0)
    from runhelp import CLI

    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    done = subprocess.run([*prefix, *CLI, "verify", "-C", str(root)], capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_STORAGE, done.stderr
    _one_line_error(done, "out/copy.txt", "Permission denied")
