"""Format-1 projects keep working: status, logs (and --script), report, verify and clean read
tests/fixtures/records_v1/project (made by running repropack as it wrote format 1: make.sh there)
through the one reader. The fixture is copied first, so every test reads records of a project
copied from elsewhere; the journal's project-relative `dir` paths are never needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runhelp import repropack

FIXTURE = Path(__file__).parents[1] / "fixtures" / "records_v1" / "project"
RUN1, RUN2 = "20261202T034506Z-660013", "20261202T034508Z-f0e3fe"


@pytest.fixture
def project(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "copied"))


def _status(root: Path) -> dict:
    return json.loads(repropack(root, "status", "--json", check=True).stdout)["instances"]


def test_status_names_the_run_the_cached_results_rest_on(project):
    table = _status(project)
    assert {iid: e["state"] for iid, e in table.items()} == {
        "count[s=a]": "cached", "count[s=b]": "cached", "gather": "cached", "bad": "failed"}
    assert table["gather"]["records"] == RUN1


def test_logs_shows_script_metrics_digests_and_streams_of_each_attempt(project):
    logs = repropack(project, "logs", "count:a", check=True).stdout
    assert f"run {RUN1}" in logs and "output: out/a.txt  sha256 87428fc5" in logs
    assert "counted a" in logs and "peak rss" in logs
    first = repropack(project, "logs", "gather", "--attempt", "1", check=True).stdout
    assert "exit code: 1" in first and "first try fails" in first
    assert "gathered" in repropack(project, "logs", "gather", check=True).stdout
    script = repropack(project, "logs", "bad", "--script", check=True).stdout
    assert script.startswith("#!/usr/bin/env bash") and script.rstrip().endswith("echo failing; exit 3")


def test_report_reads_deps_from_the_records(project):
    data = json.loads(repropack(project, "report", "--json", check=True).stdout)
    assert data["deps_source"] == "run-dirs" and data["run"] == RUN2
    assert data["instances"]["bad"]["deps"] == ["gather"]
    assert data["instances"]["gather"]["state"] == "cached"
    assert data["instances"]["gather"]["deps"] == ["count[s=a]", "count[s=b]"]  # from the run it rests on
    assert "failing" in data["instances"]["bad"]["log_tail"]["stdout"]


def test_verify_and_a_changed_output(project):
    assert repropack(project, "verify").returncode == 0
    (project / "out/b.txt").write_text("B\n")  # same size, another digest
    assert repropack(project, "verify").returncode == 1
    entry = _status(project)["count[s=b]"]
    assert entry["state"] == "changed" and "out/b.txt: the results record says sha256" in entry["message"]
    assert "not done: out/b.txt" in repropack(project, "logs", "count:b", check=True).stdout


def test_a_journal_dir_from_elsewhere_is_never_followed(project, tmp_path):
    journal = project / ".repropack/journal.jsonl"
    journal.write_text(journal.read_text().replace('"dir":".repropack/runs/', '"dir":"/etc/../tmp/runs/'))
    assert "counted a" in repropack(project, "logs", "count:a", check=True).stdout


def test_clean_keeps_the_evidence_of_cached_instances(project):
    freed = json.loads(repropack(project, "clean", "--json", check=True).stdout)
    assert freed["removed"] == [f".repropack/runs/{RUN1}/bad-1902e3d6"] and freed["files"] == 6
    assert freed["bytes"] > 0
    assert {"path": f".repropack/runs/{RUN1}", "reason": "evidence of 3 up-to-date instance(s)"} in freed["kept"]
    everything = repropack(project, "clean", "--all", check=True).stdout
    assert f"kept .repropack/runs/{RUN1}: evidence of 3 up-to-date instance(s)" in everything
    assert not (project / ".repropack/runs" / RUN2).exists()  # nothing rests on the last run's failure
    assert {e["state"] for e in _status(project).values() if e["step"] != "bad"} == {"cached"}
    assert "first try fails" in repropack(project, "logs", "gather", "--attempt", "1", check=True).stdout
    assert repropack(project, "verify", check=True).returncode == 0


def test_retention_keep_and_older_than(project):
    recent = json.loads(repropack(project, "clean", "--keep", "0", "--older-than", "100000d", "--json",
                                  check=True).stdout)
    assert recent["removed"] == [] and {k["reason"] for k in recent["kept"]} == {"newer than --older-than"}
    old = json.loads(repropack(project, "clean", "--keep", "0", "--older-than", "1s", "-n", "--json",
                               check=True).stdout)
    assert old["dry_run"] and f".repropack/runs/{RUN2}" in old["removed"]
    assert (project / ".repropack/runs" / RUN2).exists()
    bad = repropack(project, "clean", "--older-than", "soon")
    assert bad.returncode == 2 and "--older-than 'soon'" in bad.stderr
