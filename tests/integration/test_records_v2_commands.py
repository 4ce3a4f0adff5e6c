"""Format 2 through the commands: a run folder written by the records writer (RecordsWriter, the one
the runner uses) and the journal written by the runner's Journal, then status, logs (--script),
report, verify and clean read it through the one reader. Each record is checked against the schema."""

from __future__ import annotations

import hashlib
from contextlib import closing
import json
from pathlib import Path

import jsonschema
import pytest

from repropack.run.journal import Journal
from repropack.run.records import format as rf
from repropack.run.records.writer import RecordsWriter
from repropack.run.rundir import instance_dirname
from runhelp import repropack

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/schema/records-v2.schema.json").read_text())
OLD, NEW = "20261201T000000Z-aaaaaa", "20261202T000000Z-bbbbbb"
REQ = {"cpus": 1, "memory": None, "time": None, "gpus": 0}
STAGED = ".repropack/runs/{run}/slots/1/out-0-a.txt"


def _valid(kind: str, record: dict) -> dict:
    jsonschema.validate(json.loads(json.dumps(record)), {**SCHEMA, "$ref": f"#/$defs/{kind}"})
    return record


def _instance(iid: str, command: str, outputs, deps=(), cached_from=None) -> dict:
    return _valid("instance", rf.instance_record(
        id=iid, step=iid.split("[")[0], values={}, key="k" * 64, key_parts={}, inputs=[], deps=list(deps),
        command=command, environment=None, image=None, profile="local", runtime="host", backend="local",
        resources=REQ, outputs=list(outputs), cached_from=cached_from))


def _result(iid: str, attempt: int, *, outputs=(), streams=None, failure=None, staging=None, failed_dir=None):
    return _valid("result", rf.result_record(
        instance=iid, attempt=attempt, writer="local", backend="local", job_id="7",
        metrics={"start": 1.0, "end": 2.5, "wall": 1.5, "cpu": 0.25, "peak_rss": 2_000_000,
                 "peak_rss_source": "cgroup-v2", "cpu_source": "cgroup-v2"},
        exit_status=1 if failure else 0, signal=None, failure=failure, message="exit code 1" if failure else None,
        outputs=list(outputs), streams=streams or {}, staging=staging or {}, requested=REQ, failed_dir=failed_dir))


def _run_json(run_id: str, status: str) -> dict:
    return _valid("run", rf.run_record(
        run_id=run_id, repropack_version="0.1.0", argv=["repropack", "run"], host="h", user="u", profile=None,
        started=1.0, manifest={"path": "repropack.toml", "sha256": "a" * 64}, lock=None, environments={},
        pid=1, instances=2, ended=3.0, status=status))


@pytest.fixture
def project(tmp_path) -> Path:
    """Run OLD made out/a.txt (its evidence); run NEW found it cached and failed `use` (retry kept)."""
    root = tmp_path / "p"
    (root / "out").mkdir(parents=True)
    (root / "repropack.toml").write_text('[project]\nname = "v2"\n')
    (root / "out/a.txt").write_text("a\n")
    digest = hashlib.sha256(b"a\n").hexdigest()
    old_dir = root / ".repropack/runs" / OLD
    old_dir.mkdir(parents=True)
    step_out = tmp_path / "stdout"
    step_out.write_text("made a\n")
    with closing(RecordsWriter(old_dir)) as writer:
        writer.run(_run_json(OLD, "ok"))
        writer.instance(_instance("make", "echo a > out/a.txt; echo made a", ["out/a.txt"]))
        streams = writer.streams("make", 1, {"stdout": str(step_out)})
        writer.result(_result("make", 1, outputs=[rf.output_entry("out/a.txt", digest, 2)], streams=streams,
                              staging={"words": {"out/a.txt": STAGED.format(run=OLD)}}))
    new_dir = root / ".repropack/runs" / NEW
    new_dir.mkdir(parents=True)
    failed_out = tmp_path / "failed-stderr"
    failed_out.write_text("use: cannot use it\n")
    script = tmp_path / "script.sh"
    script.write_text(rf.script_text("use", 1, "use out/a.txt"))
    with closing(RecordsWriter(new_dir)) as writer:
        writer.run(_run_json(NEW, "failed"))
        writer.instance(_instance("make", "echo a > out/a.txt; echo made a", ["out/a.txt"], cached_from=OLD))
        writer.instance(_instance("use", "use out/a.txt", [], deps=["make"]))
        rel, streams = writer.keep_failed(instance_dirname("use"), 1, {"script.sh": str(script),
                                                                       "stderr": str(failed_out)}, b"{}\n")
        writer.result(_result("use", 1, failure="exit", streams=streams, failed_dir=rel))
    with Journal(root / ".repropack/journal.jsonl", OLD) as journal:
        journal.append("run", start=1.0, argv=["repropack", "run"], host="h", profile=None, pid=1, instances=1)
        journal.append("done", id="make", step="make", key="k", outputs={"out/a.txt": digest}, attempts=1)
        journal.append("end", status="ok", time=3.0)
    with Journal(root / ".repropack/journal.jsonl", NEW) as journal:
        journal.append("run", start=4.0, argv=["repropack", "run"], host="h", profile=None, pid=1, instances=2)
        journal.append("skipped", ids=["make"])
        journal.append("start", id="use", attempt=1, time=4.0, backend="local", req=REQ)
        journal.append("attempt", id="use", attempt=1, status="failed", failure="exit", exit=1,
                       metrics={"start": 4.0, "end": 5.0, "wall": 1.0})
        journal.append("failed", id="use", step="use", failure="exit", message="exit code 1", attempts=1)
        journal.append("end", status="failed", time=6.0)
    (root / ".repropack/runs/latest").write_text(NEW + "\n")
    return root


def test_status_logs_and_the_re_rendered_script(project):
    table = json.loads(repropack(project, "status", "--json", check=True).stdout)["instances"]
    assert table["make"]["state"] == "cached" and table["make"]["records"] == OLD
    assert table["use"]["state"] == "failed"
    logs = repropack(project, "logs", "make", check=True).stdout
    assert f"run {OLD}" in logs and "made a" in logs and "peak rss: 2.0 MB (cgroup-v2)" in logs
    assert "output: out/a.txt  sha256 " + hashlib.sha256(b"a\n").hexdigest() in logs
    script = repropack(project, "logs", "make", "--script", check=True).stdout
    assert script == rf.script_text("make", 1, f"echo a > {STAGED.format(run=OLD)}; echo made a")
    failed = repropack(project, "logs", "use", check=True).stdout
    assert "cannot use it" in failed and "use out/a.txt" in failed


def test_report_deps_come_from_instances_jsonl(project):
    data = json.loads(repropack(project, "report", "--json", check=True).stdout)
    assert data["deps_source"] == "records"
    assert data["instances"]["use"]["deps"] == ["make"] and data["instances"]["make"]["state"] == "cached"
    assert "cannot use it" in data["instances"]["use"]["log_tail"]["stderr"]


def test_verify_then_a_digest_that_no_longer_matches(project):
    assert repropack(project, "verify").returncode == 0
    (project / "out/a.txt").write_text("b\n")
    assert repropack(project, "verify").returncode == 1
    entry = json.loads(repropack(project, "status", "--json", check=True).stdout)["instances"]["make"]
    assert entry["state"] == "changed" and "not done" in entry["message"]


def test_clean_keeps_the_run_a_cached_result_rests_on(project):
    freed = json.loads(repropack(project, "clean", "--all", "--json", check=True).stdout)
    assert f".repropack/runs/{NEW}" in freed["removed"] and freed["files"] >= 4
    assert (project / ".repropack/runs" / OLD / "results/local.jsonl").exists()
    assert "made a" in repropack(project, "logs", "make", check=True).stdout
    assert repropack(project, "verify").returncode == 0


def test_a_newer_format_is_one_clear_error(project):
    path = project / ".repropack/runs" / OLD / "run.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 9}))
    done = repropack(project, "logs", "make")
    assert done.returncode == 1 and "run.json" in done.stderr and "version 9" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
