"""Failures: classes kept per attempt, retries with growing memory, outputs never half-taken."""

from __future__ import annotations

import json

import pytest
from runhelp import journal, repropack, write_project


def _attempts(root, iid):
    return [r for r in journal(root) if r["t"] == "attempt" and r["id"] == iid]


def test_missing_output_fails_the_step(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "lazy"
        run = "echo not writing {outputs} >&2"
        outputs = ["out/x.txt"]
    """)
    done = repropack(root, "run")
    assert done.returncode == 1
    assert "did not write out/x.txt" in done.stderr
    assert "failed: lazy" in done.stderr and "command: echo not writing" in done.stderr
    assert "not writing" in done.stderr  # the log tail
    assert not (root / "out/x.txt").exists()
    assert _attempts(root, "lazy")[0]["failure"] == "missing-output"


def test_half_written_output_never_replaces_a_good_one(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [params]
        fail = "no"
        [[steps]]
        name = "write"
        run = "echo partial > {outputs}; test {params.fail} = no; echo complete >> {outputs}"
        outputs = ["out/x.txt"]
    """)
    repropack(root, "run", check=True)
    assert (root / "out/x.txt").read_text() == "partial\ncomplete\n"
    failed = repropack(root, "run", "--param", "fail=yes")
    assert failed.returncode == 1
    assert (root / "out/x.txt").read_text() == "partial\ncomplete\n"  # the old good output is untouched
    assert "exit code 1" in failed.stderr
    fresh = write_project(tmp_path / "q", (root / "repropack.toml").read_text())
    assert repropack(fresh, "run", "--param", "fail=yes").returncode == 1
    assert not (fresh / "out/x.txt").exists()  # never half-written in place


def test_expect_mismatch_fails_and_keeps_the_output_out_of_place(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "make"
        run = "echo hello > {outputs}"
        outputs = ["out/x.txt"]
        expect = { "out/x.txt" = "sha256:0000000000000000000000000000000000000000000000000000000000000000" }
    """)
    done = repropack(root, "run")
    assert done.returncode == 1
    assert "expected sha256:0000" in done.stderr
    assert not (root / "out/x.txt").exists()
    good = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"  # sha256 of "hello\n"
    text = (root / "repropack.toml").read_text().replace("0" * 64, good)
    (root / "repropack.toml").write_text(text)
    repropack(root, "run", check=True)
    assert (root / "out/x.txt").read_text() == "hello\n"


def test_timeout_and_signal_are_classified(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "slow"
        run = "sleep 30; touch {outputs}"
        outputs = ["out/slow"]
        resources = { time = "1s" }
        [[steps]]
        name = "killed"
        run = "kill -9 $$; touch {outputs}"
        outputs = ["out/killed"]
    """)
    done = repropack(root, "run", "--keep-going", "--json")
    assert done.returncode == 1
    instances = json.loads(done.stdout)["instances"]
    assert instances["slow"]["failure"] == "timeout"
    assert instances["killed"]["failure"] == "signal"
    assert "SIGKILL" in instances["killed"]["message"]


def test_keep_going_runs_what_does_not_depend_on_the_failure(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "part"
        run = "test {n} != 2; echo {n} > {outputs}"
        foreach = { n = ["1", "2", "3"] }
        outputs = ["out/{n}"]
        [[steps]]
        name = "all"
        run = "cat {inputs} > {outputs}"
        inputs = ["out/{n}"]
        outputs = ["out/all"]
    """)
    done = repropack(root, "run", "--keep-going", "-j", "1", "--json")
    counts = json.loads(done.stdout)["counts"]
    assert done.returncode == 1
    assert counts == {"done": 2, "skipped": 0, "failed": 1, "not-run": 1}
    stop = repropack(root, "run", "--no-resume", "-j", "1", "--json")
    assert json.loads(stop.stdout)["counts"]["failed"] == 1


def _cgroup_memory() -> bool:
    from repropack.backends.local import cgroups

    return cgroups.detect() is not None


@pytest.mark.skipif(not _cgroup_memory(), reason="needs a writable cgroup v1 or v2 memory controller (root)")
def test_retries_with_growing_memory(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "hungry"
        run = "python3 -c 'bytearray(150_000_000)'; echo attempt {attempt} > {outputs}"
        outputs = ["out/x"]
        resources = { memory = "100MB * attempt" }
        retries = 2
    """)
    repropack(root, "run", check=True)
    attempts = _attempts(root, "hungry")
    assert [a["status"] for a in attempts] == ["failed", "ok"]
    assert attempts[0]["failure"] == "oom"
    assert attempts[0]["metrics"]["requested"]["memory"] == 100_000_000
    assert attempts[1]["metrics"]["requested"]["memory"] == 200_000_000
    assert (root / "out/x").read_text() == "attempt 2\n"


def test_a_step_that_can_never_fit_is_refused_before_anything_runs(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "first"
        run = "touch {outputs}"
        outputs = ["out/a"]
        [[steps]]
        name = "huge"
        run = "touch {outputs}"
        outputs = ["out/b"]
        resources = { cpus = 512 }
    """)
    done = repropack(root, "run")
    assert done.returncode == 5  # EXIT_RESOURCES (docs/cli.md); it was 1, like a failed step
    assert "huge asks for 512 cpus" in done.stderr
    assert not (root / "out").exists() and not (root / ".repropack/journal.jsonl").exists()


def test_missing_input_is_named_before_anything_runs(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "use"
        run = "cat {inputs} > {outputs}"
        inputs = ["data/absent.txt"]
        outputs = ["out/a"]
    """)
    done = repropack(root, "run")
    assert done.returncode == 1
    assert "missing input data/absent.txt" in done.stderr
