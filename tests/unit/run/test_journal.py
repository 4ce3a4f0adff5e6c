import json

import pytest
from repropack.errors import FormatVersionError
from repropack.run.journal import (
    JOURNAL_VERSION,
    Journal,
    compact,
    load_state,
    read_records,
)


def _done(journal, iid, key="k"):
    journal.append("done", id=iid, key=key, outputs={})


def test_records_are_versioned_and_read_back(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, "r1") as j:
        j.append("run", time=1)
        _done(j, "a")
        j.flush()
    records = list(read_records(path))
    assert [r["t"] for r in records] == ["run", "done"]
    assert all(r["v"] == JOURNAL_VERSION and r["run"] == "r1" for r in records)


def test_flush_reaches_the_file_without_close(tmp_path):
    # what a kill -9 leaves: records handed to the kernel are in the file
    path = tmp_path / "journal.jsonl"
    j = Journal(path, "r1", sync_interval=3600)
    _done(j, "a")
    j.flush()
    assert load_state(path).done.keys() == {"a"}


def test_truncated_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, "r1") as j:
        j.append("run")
        _done(j, "a")
        _done(j, "b")
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])  # a crash in the middle of the last record
    state = load_state(path)
    assert set(state.done) == {"a"}
    with Journal(path, "r2") as j:  # the next run cuts the torn tail before appending
        j.append("run")
        _done(j, "c")
    lines = path.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)
    assert set(load_state(path).done) == {"a", "c"}


def test_a_whole_file_without_newline_is_cut(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"v":1,"t":"do')
    with Journal(path, "r") as j:
        _done(j, "x")
    assert set(load_state(path).done) == {"x"}


def test_newer_version_is_refused(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"v": JOURNAL_VERSION + 1, "t": "run", "run": "x"}) + "\n")
    with pytest.raises(FormatVersionError):
        load_state(path)


def test_latest_done_wins_and_last_run_is_tracked(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, "r1") as j:
        j.append("run")
        _done(j, "a", key="old")
    with Journal(path, "r2") as j:
        j.append("run")
        _done(j, "a", key="new")
        j.append("failed", id="b", failure="exit")
    state = load_state(path)
    assert state.done["a"]["key"] == "new"
    assert state.last_run["run"] == "r2"
    assert state.instance_states()["b"]["t"] == "failed"


def test_compaction_keeps_latest_done_and_last_run(tmp_path):
    path = tmp_path / "journal.jsonl"
    for n in range(30):
        with Journal(path, f"r{n}") as j:
            j.append("run")
            for i in range(1000):
                _done(j, f"i{i}", key=f"k{n}")
    state = load_state(path)
    assert compact(path, state)
    after = load_state(path)
    assert after.done == state.done
    assert after.last_run["run"] == "r29"
    assert after.lines <= 1001 + 1000
