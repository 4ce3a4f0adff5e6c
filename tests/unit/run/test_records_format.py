"""Format 2 of the run records: builders against the JSON Schema, versions, frames, staging, SHA256SUMS."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.errors import FormatVersionError
from repropack.manifest.placeholders import quote_path
from repropack.run.records import format as rf
from repropack.run.records.sums import sums_bytes, sums_entries
from repropack.run.records.writer import RecordsWriter
from repropack.run.safepath import ProjectTree

SCHEMA = json.loads((Path(__file__).parents[3] / "docs/schema/records-v2.schema.json").read_text())


def validate(kind: str, record: dict) -> None:
    """Check a record of one kind (run, instance, result) against the schema, as written (JSON)."""
    jsonschema.validate(json.loads(json.dumps(record)), {**SCHEMA, "$ref": f"#/$defs/{kind}"})


def _run() -> dict:
    return rf.run_record(run_id="20261202-0330-abcd", repropack_version="0.1.0", argv=["run", "-j", "2"],
                         host="h", user="u", profile=None, started=1.5,
                         manifest={"path": "repropack.toml", "sha256": "a" * 64}, lock=None,
                         environments={"main": rf.environment_identity(runtime="docker", lock_sha256="b" * 64,
                                                                       image_id="sha256:" + "c" * 64)},
                         pid=1, instances=3)


def _instance() -> dict:
    return rf.instance_record(id="count[sample=a]", step="count", values={"sample": "a"}, key="k" * 64,
                              key_parts={"command": "d" * 64}, inputs=[rf.input_entry("in/a.txt", "e" * 64, 3)],
                              deps=["split[sample=a]"], command="wc -l in/a.txt > out/a.txt", environment=None,
                              image=None, profile="default", runtime="host", backend="local",
                              resources={"cpus": 1, "memory": None, "time": None, "gpus": 0},
                              outputs=["out/a.txt"])


def _result(**over) -> dict:
    data, offset = rf.frame("count[sample=a]", 1, "stdout", b"hello\n")
    fields = dict(instance="count[sample=a]", attempt=1, writer="local", backend="local", job_id="123",
                  metrics={"start": 1.0, "end": 2.0, "wall": 1.0, "cpu": 0.5, "peak_rss": 1000,
                           "peak_rss_source": "cgroup-v1", "cpu_source": "cgroup-v1"},
                  exit_status=0, signal=None, failure=None, message=None,
                  outputs=[rf.output_entry("out/a.txt", "f" * 64, 2), rf.output_entry("out/d", "tree:" + "0" * 64, None)],
                  streams={"stdout": rf.stream_ref("streams/local.log", offset, 6)},
                  staging={"words": {"out/a.txt": ".repropack/runs/r/slots/1/out-0-a.txt"}},
                  requested={"cpus": 1, "memory": None, "time": None, "gpus": 0})
    fields.update(over)
    return rf.result_record(**fields)


def test_builders_write_what_the_schema_describes():
    validate("run", _run())
    validate("instance", _instance())
    validate("result", _result())
    validate("result", _result(failure="exit", exit_status=1, streams={}, staging={}, outputs=[],
                               failed_dir=rf.failed_dir("count.sample.a-1234abcd", 1)))


def test_schema_refuses_what_readers_cannot_take():
    bad = _result()
    bad["outputs"][0]["sha256"] = "tree:" + "0" * 64  # a digest is bare hex; the type says tree
    with pytest.raises(jsonschema.ValidationError):
        validate("result", bad)
    with pytest.raises(jsonschema.ValidationError):
        validate("result", {**_result(), "streams": {"stdout": rf.stream_ref("streams/local.log", 0, 0)}})
    with pytest.raises(jsonschema.ValidationError):
        validate("run", {**_run(), "format": 3})


def test_output_digest_round_trips_the_journal_form():
    assert rf.output_digest(rf.output_entry("d", "tree:" + "1" * 64, None)) == "tree:" + "1" * 64
    assert rf.output_digest(rf.output_entry("f", "2" * 64, 4)) == "2" * 64


def test_newer_format_is_an_error_naming_file_and_version(tmp_path):
    path = tmp_path / "results" / "local.jsonl"
    with pytest.raises(FormatVersionError) as err:
        rf.check_format({"format": 3}, path, "results")
    assert str(path) in str(err.value) and "version 3" in str(err.value)
    assert rf.check_format({}, path) == 1  # format 1 records carried no version


def test_torn_and_damaged_lines_are_skipped():
    lines = rf.dumps_line({"format": 2, "n": 1}) + b"not json\n" + rf.dumps_line({"format": 2, "n": 2})
    assert [r["n"] for r in rf.iter_lines(lines + b'{"format": 2, "n": 3', "x", "results")] == [1, 2]
    with pytest.raises(FormatVersionError):
        list(rf.iter_lines(rf.dumps_line({"format": 9}), "x", "results"))


def test_writer_names_are_file_names():
    assert rf.results_file("slurm-123") == "results/slurm-123.jsonl"
    assert rf.streams_file("local") == "streams/local.log"
    for bad in ("../x", "", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            rf.results_file(bad)


@settings(derandomize=True, max_examples=200)
@given(st.lists(st.tuples(st.text(max_size=30), st.sampled_from(["stdout", "stderr"]), st.binary(max_size=200)),
                max_size=8))
def test_frames_are_found_again_by_offset_and_by_walking(chunks):
    log = b""
    refs = []
    for n, (iid, name, data) in enumerate(chunks):
        bytes_, offset = rf.frame(iid, n + 1, name, data)
        refs.append((log.__len__() + offset, len(data), data))
        log += bytes_
    for offset, length, data in refs:
        assert log[offset:offset + length] == data
    walked = list(rf.read_frames(log))
    assert [(o, n) for _, o, n in walked] == [(o, n) for o, n, _ in refs]
    assert [h["instance"] for h, _, _ in walked] == [c[0] for c in chunks]
    if log:  # a torn tail ends the walk without an error
        assert len(list(rf.read_frames(log[:-1]))) == max(0, len(chunks) - 1)


paths = st.lists(st.from_regex(r"[a-z0-9_.-]{1,8}(/[a-z0-9 _.'-]{1,8}){0,2}", fullmatch=True), min_size=1,
                 max_size=4, unique=True)


@settings(derandomize=True, max_examples=200)
@given(paths, st.text(alphabet="ab {}>'\"$", max_size=20), st.integers(1, 3))
def test_staging_gives_back_the_exact_command(outputs, noise, attempt):
    staged = [f".repropack/runs/r/slots/1/out-{n}-{p.rsplit('/', 1)[-1]}" for n, p in enumerate(outputs)]

    def render(outs):  # the shapes a command takes: paths among other words, a path twice, an attempt number
        words = " ".join(quote_path(o) for o in outs)
        return f"echo {noise} {quote_path(outputs[0])} {attempt} > {words}; cat {words}"

    declared, executed = render(outputs), render(staged)
    words = {quote_path(d): quote_path(s) for d, s in zip(outputs, staged)}
    record = rf.staging_record(declared, executed, words)
    assert rf.executed_command(declared, record) == executed
    assert rf.staging_record(declared, declared, words) == {}


def test_script_text_is_the_script_that_runs():
    from repropack.run.attempt import render_script

    assert render_script('x["a\\n"]', 2, "true") == rf.script_text('x["a\\n"]', 2, "true")
    assert rf.script_text("s", 1, "true").splitlines()[2] == "set -euo pipefail"


def test_sha256sums_pass_sha256sum_check_from_the_project_root(tmp_path):
    (tmp_path / "out" / "d" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "a b.txt").write_text("a\n")
    (tmp_path / "out" / "back\\slash").write_text("b\n")
    (tmp_path / "out" / "d" / "sub" / "f").write_text("c\n")
    os.symlink("sub/f", tmp_path / "out" / "d" / "link")
    import hashlib

    digest = {p: hashlib.sha256((tmp_path / p).read_bytes()).hexdigest() for p in ("out/a b.txt", "out/back\\slash")}
    run = tmp_path / ".repropack" / "runs" / "r"
    run.mkdir(parents=True)
    with ProjectTree(tmp_path) as tree:
        entries = sums_entries(tree, {**digest, "out/d": "tree:" + "0" * 64})
    assert sorted(entries) == ["out/a b.txt", "out/back\\slash", "out/d/sub/f"]
    writer = RecordsWriter(run)
    writer.write_whole(rf.SUMS, sums_bytes(entries))
    writer.close()
    check = subprocess.run(["sha256sum", "-c", str(run / rf.SUMS)], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    (tmp_path / "out" / "d" / "sub" / "f").write_text("changed\n")
    assert subprocess.run(["sha256sum", "-c", "--quiet", str(run / rf.SUMS)], cwd=tmp_path,
                          capture_output=True).returncode == 1
