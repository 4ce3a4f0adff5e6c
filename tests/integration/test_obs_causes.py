"""Failure causes end to end: a real failing step, its cause in run's failure summary, report, status."""

from __future__ import annotations

import json

from runhelp import repropack, write_project

DISK_FULL = """
    [project]
    name = "p"
    [[steps]]
    name = "fill"
    run = "echo 'cp: error writing out/x: No space left on device' >&2; exit 1"
    outputs = ["out/x"]
    [[steps]]
    name = "lic"
    run = "echo 'FLEXlm: license server flex01 unavailable (token=abcdef123456)' >&2; exit 3"
    outputs = ["out/y"]
    [[causes]]
    pattern = "license server \\\\S+ unavailable"
    cause = "license server down"
    fix = "wait for the license server, then run again"
"""


def test_disk_full_is_named_in_summary_report_and_status(tmp_path):
    root = write_project(tmp_path / "p", DISK_FULL)
    done = repropack(root, "run", "--keep-going")
    assert done.returncode == 1
    assert "failed: fill (exit: exit code 1)" in done.stderr
    assert "cause: disk full (log: cp: error writing out/x: No space left on device)" in done.stderr
    assert "fix: the file system the step writes to is full" in done.stderr
    # the manifest's own pattern, and the secret in the evidence line masked
    assert "cause: license server down (log: FLEXlm: license server flex01 unavailable (token=***" in done.stderr
    assert "abcdef123456" not in done.stderr

    report = repropack(root, "report", "--json", "-o", str(tmp_path / "r.html"), check=True)
    instances = json.loads(report.stdout)["instances"]
    assert instances["fill"]["cause"]["cause"] == "disk full"
    assert instances["fill"]["cause"]["id"] == "disk-full"
    assert instances["lic"]["cause"]["cause"] == "license server down"
    html = (tmp_path / "r.html").read_text()
    assert "cause: <strong>disk full</strong>" in html and "abcdef123456" not in html

    status = repropack(root, "status", check=True)
    assert "cause: disk full" in status.stdout
    table = json.loads(repropack(root, "status", "--json", check=True).stdout)["instances"]
    assert table["fill"]["cause"]["cause"] == "disk full"


def test_run_json_names_the_cause(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "tool"
        run = "samtools-not-installed-here --version"
        outputs = ["out/y"]
    """)
    done = repropack(root, "run", "--json")
    assert done.returncode == 1
    cause = json.loads(done.stdout)["instances"]["tool"]["cause"]
    assert cause["cause"] == "missing command"
    assert cause["evidence"].endswith("command not found")
