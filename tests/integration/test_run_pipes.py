"""pipe = true: producer and reader run together through a FIFO; the stream is hashed; one unit."""

from __future__ import annotations

import hashlib
import json

from runhelp import journal, repropack, to_run, write_project


def _project(tmp_path, produce="seq 1 200000 > {outputs}", consume="wc -l < {inputs} > {outputs}", retries=0):
    return write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [[steps]]
        name = "produce"
        run = "{produce}"
        outputs = [{{ path = "tmp/stream.txt", pipe = true }}]
        retries = {retries}
        [[steps]]
        name = "consume"
        run = "{consume}"
        inputs = ["tmp/stream.txt"]
        outputs = ["results/count.txt"]
        retries = {retries}
    """)


def _done(root):
    return {r["id"]: r for r in journal(root) if r["t"] == "done"}


def test_stream_passes_through_a_fifo_and_is_hashed(tmp_path):
    root = _project(tmp_path)
    repropack(root, "run", check=True)
    assert (root / "results/count.txt").read_text().strip() == "200000"
    assert not (root / "tmp/stream.txt").exists()  # never written to disk, no FIFO left behind
    stream = _done(root)["produce"]["streams"]["tmp/stream.txt"]
    expected = "".join(f"{i}\n" for i in range(1, 200001)).encode()
    assert stream == {"sha256": hashlib.sha256(expected).hexdigest(), "bytes": len(expected), "complete": True}
    assert to_run(root) == []
    assert repropack(root, "verify").returncode == 0


def test_a_change_to_the_producer_reruns_both(tmp_path):
    root = _project(tmp_path)
    repropack(root, "run", check=True)
    text = (root / "repropack.toml").read_text().replace("seq 1 200000", "seq 1 1000")
    (root / "repropack.toml").write_text(text)
    assert set(to_run(root)) == {"produce", "consume"}
    repropack(root, "run", check=True)
    assert (root / "results/count.txt").read_text().strip() == "1000"


def test_producer_failure_fails_both_and_the_pair_is_retried_as_one(tmp_path):
    root = _project(tmp_path, produce="seq 1 1000 > {outputs}; test {attempt} -ge 2", retries=1)
    done = repropack(root, "run", "--json", check=True)
    assert json.loads(done.stdout)["counts"]["done"] == 2
    attempts = [(r["id"], r["attempt"], r["status"]) for r in journal(root) if r["t"] == "attempt"]
    assert ("produce", 1, "failed") in attempts and ("consume", 1, "failed") in attempts
    assert ("produce", 2, "ok") in attempts and ("consume", 2, "ok") in attempts
    assert (root / "results/count.txt").read_text().strip() == "1000"


def test_reader_failure_stops_the_producer(tmp_path):
    root = _project(tmp_path, produce="yes > {outputs}", consume="head -c 10 {inputs} > {outputs}; exit 3")
    done = repropack(root, "run", "--json")
    assert done.returncode == 1
    instances = json.loads(done.stdout)["instances"]
    assert instances["consume"]["failure"] == "exit"
    assert instances["produce"]["status"] == "failed"  # `yes` would run forever: it was stopped
    assert not (root / "results/count.txt").exists()
