"""`repropack status --watch` in a pseudo-terminal (pexpect) beside a run with failures.

The run's slow steps wait for a file the test writes once the watcher has drawn them running, so
what is on the screen at each point does not depend on the machine's speed.
"""

from __future__ import annotations

import sys
import time

import pexpect
from runhelp import CLI, journal, start, write_project


def test_watch_follows_a_run_with_failures_until_it_ends(tmp_path):
    release = tmp_path / "release"
    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [[steps]]
        name = "full"
        run = "echo 'write error: No space left on device' >&2; exit 1"
        outputs = ["full.txt"]
        [[steps]]
        name = "slow"
        foreach = {{ n = [1, 2, 3] }}
        run = "while [ ! -e {release} ]; do sleep 0.1; done; echo {{n}} > {{outputs}}"
        outputs = ["out/{{n}}.txt"]
    """)
    run = start(root, "run", "-j", "3", "--keep-going")
    try:
        while not any(r["t"] == "start" for r in journal(root)):  # the run is under way (its lock taken)
            assert run.poll() is None, run.communicate()
            time.sleep(0.1)
        child = pexpect.spawn(CLI[0], [*CLI[1:], "status", "--watch", "--interval", "0.2", "-C", str(root)],
                              dimensions=(40, 160), encoding="utf-8", timeout=120)
        child.expect(r"run \d{8}T\d{6}Z-[0-9a-f]+\s+running")
        child.expect(r"slow\s+\d\s+\d\s+\d\s+\d\s+\d")
        child.expect("slowest running: slow")
        child.expect("failed: full: exit: exit code 1  cause: disk full")  # the failure while the run goes on
        release.write_text("go")
        child.expect(r"ended failed")
        child.expect(pexpect.EOF)
        screen = child.before
        child.close()
        assert child.exitstatus == 0, screen
    finally:
        release.write_text("go")
        run.communicate(timeout=120)
    assert run.returncode == 1


def test_watch_without_a_run(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "a"
        run = "echo 1 > {outputs}"
        outputs = ["a.txt"]
    """)
    child = pexpect.spawn(sys.executable, [*CLI[1:], "status", "--watch", "-C", str(root)], encoding="utf-8",
                          timeout=60)
    child.expect("no run yet in this project")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
