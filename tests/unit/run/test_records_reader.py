"""The one reader, format 2: run folders made with the format's own builders (each record checked
against docs/schema/records-v2.schema.json), then read back; bad input per issue 10."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.errors import EXIT_CODES, FormatVersionError
from repropack.run.records import format as rf
from repropack.run.records.reader import UNTRUSTED, open_run, run_ids, safe_rel
from repropack.run.rundir import instance_dirname
from repropack.run.verify import result_problems

SCHEMA = json.loads((Path(__file__).parents[3] / "docs/schema/records-v2.schema.json").read_text())
RUN = "20261202T040000Z-abcdef"
REQ = {"cpus": 1, "memory": None, "time": None, "gpus": 0}


def _valid(kind: str, record: dict) -> dict:
    jsonschema.validate(json.loads(json.dumps(record)), {**SCHEMA, "$ref": f"#/$defs/{kind}"})
    return record


class V2Run:
    """A format-2 run folder written record by record with the format module's builders."""

    def __init__(self, root: Path, run_id: str = RUN):
        self.root, self.run_id = root, run_id
        self.dir = root / ".repropack" / "runs" / run_id
        (self.dir / rf.RESULTS).mkdir(parents=True)
        (self.dir / rf.STREAMS).mkdir()
        run = rf.run_record(run_id=run_id, repropack_version="0.1.0", argv=["repropack", "run"], host="h",
                            user="u", profile=None, started=1.0, manifest={"path": "repropack.toml", "sha256": "a" * 64},
                            lock=None, environments={}, pid=1, instances=2, ended=3.0, status="ok")
        (self.dir / rf.RUN_JSON).write_text(json.dumps(_valid("run", run)))

    def instance(self, iid: str, command: str, outputs=(), deps=(), cached_from=None) -> None:
        record = rf.instance_record(id=iid, step=iid.split("[")[0], values={}, key="k" * 64, key_parts={},
                                    inputs=[], deps=list(deps), command=command, environment=None, image=None,
                                    profile="local", runtime="host", backend="local", resources=REQ,
                                    outputs=list(outputs), cached_from=cached_from)
        self._append(rf.INSTANCES, _valid("instance", record))

    def result(self, iid: str, attempt: int = 1, *, outputs=(), stdout: bytes = b"", failure=None, exit_status=0,
               staging=None, writer="local", torn=False, **extra) -> dict:
        streams, failed = {}, None
        if failure is not None:
            failed = rf.failed_dir(instance_dirname(iid), attempt)
            (self.dir / failed).mkdir(parents=True)
            (self.dir / failed / "script.sh").write_text(rf.script_text(iid, attempt, "false"))
            (self.dir / failed / "stdout").write_bytes(stdout)
            if stdout:
                streams["stdout"] = rf.stream_ref(f"{failed}/stdout", 0, len(stdout))
        elif stdout:
            log = self.dir / rf.streams_file(writer)
            data, start = rf.frame(iid, attempt, "stdout", stdout)
            offset = (log.stat().st_size if log.exists() else 0) + start
            with open(log, "ab") as handle:
                handle.write(data)
            streams["stdout"] = rf.stream_ref(rf.streams_file(writer), offset, len(stdout))
        entries = [rf.output_entry(path, rf.output_digest({"sha256": digest}) if digest else "0" * 64,
                                   size) for path, digest, size in outputs]
        record = rf.result_record(instance=iid, attempt=attempt, writer=writer, backend="local", job_id="1",
                                  metrics={"start": 1.0, "end": 2.0, "wall": 1.0, "cpu": 0.5, "peak_rss": 4096},
                                  exit_status=exit_status, signal=None, failure=failure,
                                  message="exit code 1" if failure else None, outputs=entries, streams=streams,
                                  staging=staging or {}, requested=REQ, failed_dir=failed)
        record.update(extra)
        self._append(rf.results_file(writer), _valid("result", record) if not extra else record, torn=torn)
        return record

    def _append(self, rel: str, record: dict, torn: bool = False) -> None:
        line = rf.dumps_line(record)
        with open(self.dir / rel, "ab") as handle:
            handle.write(line[: len(line) // 2] if torn else line)


def _digest(text: bytes) -> str:
    import hashlib

    return hashlib.sha256(text).hexdigest()


@pytest.fixture
def v2(tmp_path) -> V2Run:
    run = V2Run(tmp_path / "proj")
    (run.root / "out").mkdir()
    (run.root / "out/a.txt").write_bytes(b"a\n")
    run.instance("count[s=a]", "echo a > out/a.txt", outputs=["out/a.txt"])
    run.instance("gather", "cat out/a.txt > all.txt", outputs=["all.txt"], deps=["count[s=a]"])
    run.result("count[s=a]", outputs=[("out/a.txt", _digest(b"a\n"), 2)], stdout=b"hello\n",
               staging={"words": {"out/a.txt": ".repropack/runs/r/slots/1/out-0-a.txt"}})
    run.result("gather", failure="exit", exit_status=1, stdout=b"boom\n")
    return run


def test_a_format_2_run_reads_back_whole(v2):
    view = open_run(v2.root, RUN)
    assert view.format == 2 and run_ids(v2.root) == [RUN]
    assert view.info.repropack_version == "0.1.0" and view.info.status == "ok"
    assert view.instances["gather"].deps == ["count[s=a]"]
    ok = view.result("count[s=a]")
    assert ok.ok and ok.wall == 1.0 and ok.peak_rss == 4096 and ok.writer == "local"
    assert [(o.path, o.size) for o in view.outputs("count[s=a]")] == [("out/a.txt", 2)]
    assert view.stream(ok, "stdout") == b"hello\n" and view.stream(ok, "stderr") == b""
    # the exact script, re-rendered: the staging path the attempt wrote, never shown in instances.jsonl
    assert view.script("count[s=a]").endswith("echo a > .repropack/runs/r/slots/1/out-0-a.txt\n")
    assert view.instances["count[s=a]"].command == "echo a > out/a.txt"
    failed = view.last_attempt("gather")
    assert not failed.ok and view.stream(failed, "stdout") == b"boom\n"
    assert view.script("gather", failed).endswith("false\n")  # the kept script.sh
    assert result_problems(v2.root, ok.outputs) == []


def test_only_reads_the_named_instance(v2):
    view = open_run(v2.root, RUN, only={"gather"})
    assert list(view.instances) == ["gather"] and view.attempts("count[s=a]") == []


def test_a_newer_format_names_the_file_and_version(v2):
    data = json.loads((v2.dir / "run.json").read_text())
    (v2.dir / "run.json").write_text(json.dumps({**data, "format": 3}))
    with pytest.raises(FormatVersionError) as caught:
        open_run(v2.root, RUN)
    assert str(v2.dir / "run.json") in str(caught.value) and "version 3" in str(caught.value)
    assert caught.value.exit_code in dict(EXIT_CODES)


def test_a_newer_format_in_a_results_line_names_the_results_file(v2):
    v2.result("count[s=a]", attempt=2, format=3)
    with pytest.raises(FormatVersionError, match=r"results/local\.jsonl.*version 3"):
        open_run(v2.root, RUN)


def test_a_torn_results_line_is_ignored_and_that_attempt_counts_as_not_made(v2):
    v2.instance("late", "true")
    v2.result("late", torn=True)
    view = open_run(v2.root, RUN)
    assert view.attempts("late") == [] and view.result("late") is None
    assert view.result("count[s=a]").ok  # the lines before it still count


def test_a_digest_that_does_not_match_the_file_says_not_done(v2):
    (v2.root / "out/a.txt").write_bytes(b"b\n")  # same size, other content
    problems = result_problems(v2.root, open_run(v2.root, RUN).outputs("count[s=a]"))
    assert len(problems) == 1 and problems[0].startswith("out/a.txt: the results record says sha256")


def test_paths_from_elsewhere_are_never_trusted(v2, tmp_path):
    v2.instance("evil", "true", outputs=["/etc/passwd", "ok.txt"])
    v2.result("evil", outputs=[("/etc/passwd", "0" * 64, 1)], streams={"stdout": {"file": "/etc/passwd",
              "offset": 0, "length": 10}, "stderr": {"file": "../../../../etc/passwd", "offset": 0, "length": 10}})
    view = open_run(v2.root, RUN)
    assert view.instances["evil"].outputs == ["ok.txt"]
    attempt = view.last_attempt("evil")
    assert attempt.failure == UNTRUSTED and not attempt.ok and view.result("evil") is None
    assert attempt.streams == {} and "/etc/passwd" in attempt.message


def test_a_stream_file_that_is_a_link_is_not_followed(v2, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"do not show\n" * 4)
    log = v2.dir / rf.streams_file("local")
    log.unlink()
    os.symlink(secret, log)
    from repropack.run.safepath import UnsafePath

    view = open_run(v2.root, RUN)
    with pytest.raises(UnsafePath, match="local.log is a symbolic link"):
        view.stream(view.result("count[s=a]"), "stdout")  # refused, one line naming it; never read


@settings(derandomize=True, max_examples=200)
@given(st.text(alphabet="ab./~\\\0", max_size=12))
def test_safe_rel_never_gives_a_path_leaving_the_project(path):
    rel = safe_rel(path)
    if rel is not None:
        assert not rel.startswith("/") and ".." not in rel.split("/") and "\\" not in rel and "\0" not in rel


LINE = st.one_of(
    st.binary(max_size=40),
    st.dictionaries(st.sampled_from(["instance", "attempt", "outputs", "streams", "exit_status", "failure",
                                     "failed_dir", "format", "staging"]),
                    st.one_of(st.none(), st.integers(-2, 3), st.text(max_size=8), st.lists(st.text(max_size=4)),
                              st.dictionaries(st.sampled_from(["words", "command", "stdout", "file", "a"]),
                                              st.one_of(st.text(max_size=4), st.lists(st.text(max_size=2)),
                                                        st.dictionaries(st.text(max_size=3), st.integers())))),
                    max_size=6).map(lambda d: json.dumps({"instance": "x", "attempt": 1, **d}).encode()),
)


@settings(derandomize=True, max_examples=120, deadline=None)
@given(st.lists(LINE, max_size=6), st.booleans())
def test_damaged_results_lines_never_crash_the_reader(tmp_path_factory, lines, torn):
    run = V2Run(tmp_path_factory.mktemp("damaged") / "proj")
    run.instance("x", "true")
    data = b"\n".join(lines) + (b"" if torn else b"\n")
    (run.dir / rf.results_file("local")).write_bytes(data)
    try:
        view = open_run(run.root, RUN)
    except FormatVersionError as exc:  # a line claiming a newer format: the one error, naming the file
        assert "results/local.jsonl" in str(exc)
        return
    for attempt in view.attempts("x"):
        assert all(not o.path.startswith("/") for o in attempt.outputs)
        view.stream(attempt, "stdout")
        view.script("x", attempt)
