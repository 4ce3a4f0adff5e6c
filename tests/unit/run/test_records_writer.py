"""RecordsWriter: streams framed by offset, failed attempts kept, records whole, no link followed."""

from __future__ import annotations

import json
import os

import pytest

from repropack.run.records import format as rf
from repropack.run.records.writer import RecordsWriter


def _lines(path):
    return list(rf.iter_lines(path.read_bytes(), path, "records"))


def test_streams_are_appended_only_when_non_empty_and_found_by_offset(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "o1").write_bytes(b"one\n")
    (tmp_path / "e1").write_bytes(b"")
    (tmp_path / "o2").write_bytes(b"\x00two")
    writer = RecordsWriter(run)
    first = writer.streams("a", 1, {"stdout": str(tmp_path / "o1"), "stderr": str(tmp_path / "e1")})
    second = writer.streams("b", 1, {"stdout": str(tmp_path / "o2"), "stderr": str(tmp_path / "missing")})
    assert set(first) == {"stdout"} and set(second) == {"stdout"}
    writer.result({"format": 2, "instance": "a", "streams": first})
    writer.close()
    log = (run / "streams" / "local.log").read_bytes()
    for ref, data in ((first["stdout"], b"one\n"), (second["stdout"], b"\x00two")):
        assert ref["file"] == "streams/local.log"
        assert log[ref["offset"]:ref["offset"] + ref["length"]] == data
    assert [h["instance"] for h, _, _ in rf.read_frames(log)] == ["a", "b"]
    assert _lines(run / "results" / "local.jsonl")[0]["streams"] == first


def test_offsets_continue_a_log_written_before(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "o").write_bytes(b"x" * 10)
    for n in (1, 2):
        writer = RecordsWriter(run, "slurm-7")
        ref = writer.streams("a", n, {"stdout": str(tmp_path / "o")})["stdout"]
        writer.close()
        log = (run / "streams" / "slurm-7.log").read_bytes()
        assert log[ref["offset"]:ref["offset"] + 10] == b"x" * 10


def test_a_failed_attempt_keeps_its_files_under_failed(tmp_path):
    run, slot = tmp_path / "run", tmp_path / "slot"
    run.mkdir()
    slot.mkdir()
    (slot / "script.sh").write_text("false\n")
    (slot / "stdout").write_text("")
    (slot / "stderr").write_text("boom\n")
    writer = RecordsWriter(run)
    rel, streams = writer.keep_failed("s-1234", 2, {n: str(slot / n) for n in ("script.sh", "stdout", "stderr")},
                                      b'{"failure": "exit"}\n')
    writer.close()
    assert rel == "failed/s-1234/attempt-2"
    assert sorted(os.listdir(run / rel)) == ["metrics.json", "script.sh", "stderr", "stdout"]
    assert streams == {"stderr": {"file": f"{rel}/stderr", "offset": 0, "length": 5}}
    assert json.loads((run / rel / "metrics.json").read_text()) == {"failure": "exit"}
    assert not (slot / "stderr").exists()


def test_records_are_flushed_streams_first_and_run_json_whole(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    writer = RecordsWriter(run)
    writer.run({"format": 2, "run_id": "r"})
    writer.instance({"format": 2, "id": "a"})
    writer.result({"format": 2, "instance": "a"})
    assert not (run / "instances.jsonl").exists()  # buffered until flush
    writer.flush()
    assert [r["id"] for r in _lines(run / "instances.jsonl")] == ["a"]
    assert json.loads((run / "run.json").read_text())["run_id"] == "r"
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]
    writer.close()


def test_a_planted_link_is_never_written_through(tmp_path):
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    os.symlink(victim, run / "results" / "local.jsonl")
    writer = RecordsWriter(run)
    writer.result({"format": 2, "instance": "a"})
    with pytest.raises(OSError):
        writer.flush()
    assert victim.read_text() == "keep\n"
    writer.close()


def test_a_log_swapped_for_a_link_is_neither_read_nor_kept(tmp_path):
    run, slot = tmp_path / "run", tmp_path / "slot"
    run.mkdir()
    slot.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("host file\n")
    os.symlink(secret, slot / "stdout")
    os.mkfifo(slot / "stderr")
    writer = RecordsWriter(run)
    assert writer.streams("a", 1, {"stdout": str(slot / "stdout"), "stderr": str(slot / "stderr")}) == {}
    rel, streams = writer.keep_failed("a-1", 1, {"stdout": str(slot / "stdout"), "stderr": str(slot / "stderr")}, b"{}\n")
    writer.close()
    assert streams == {} and sorted(os.listdir(run / rel)) == ["metrics.json"]
    assert secret.read_text() == "host file\n"
