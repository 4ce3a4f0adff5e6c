"""kill -9, SIGINT and a second run: nothing finished is lost, nothing is left running, no interleaving."""

from __future__ import annotations

import json
import os
import signal
import time

from runhelp import (
    done_ids,
    last_run_id,
    left_after,
    processes_with_marker,
    repropack,
    start,
    to_run,
    write_project,
)

N = 12


def _project(tmp_path, sleep="0.4", extra=""):
    return write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [[steps]]
        name = "work"
        run = "(sleep 300 &) ; sleep {sleep}; echo {{n}} > {{outputs}}{extra}"
        foreach = {{ n = [{", ".join(f'"{i}"' for i in range(N))}] }}
        outputs = ["out/{{n}}.txt"]
    """)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_kill_9_mid_run_loses_no_finished_instance_and_leaves_no_orphan(tmp_path):
    root = _project(tmp_path)
    runner = start(root, "run", "-j", "2")
    assert _wait_for(lambda: len(done_ids(root)) >= 3), runner.communicate()
    runner.kill()  # SIGKILL
    runner.wait()
    run_id = last_run_id(root)
    finished = done_ids(root)
    # the step and its background `sleep 300` are gone
    assert left_after(lambda: processes_with_marker(run_id)) == []
    for iid in finished:
        n = iid.split("=")[1].rstrip("]")
        assert (root / f"out/{n}.txt").read_text() == f"{n}\n"
    # no half-written output was left in place
    for path in (root / "out").iterdir():
        assert path.read_text().strip().isdigit()
    remaining = set(to_run(root))
    assert remaining.isdisjoint(finished)
    assert len(remaining) == N - len(finished)
    done = repropack(root, "run", "-j", "2", "--json", check=True)
    counts = json.loads(done.stdout)["counts"]
    assert counts["skipped"] == len(finished) and counts["done"] == N - len(finished)
    assert to_run(root) == []


def test_a_second_run_is_refused_while_one_is_active(tmp_path):
    root = _project(tmp_path, sleep="2")
    first = start(root, "run", "-j", "1")
    assert _wait_for(lambda: (root / ".repropack/runs/latest").exists() and processes_with_marker(last_run_id(root)))
    second = repropack(root, "run")
    assert second.returncode == 6  # EXIT_BUSY (docs/cli.md)
    assert "another `repropack run` is active" in second.stderr
    clean = repropack(root, "clean")
    assert clean.returncode == 6
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err


def test_sigint_stops_cleanly_with_130_and_a_consistent_journal(tmp_path):
    root = _project(tmp_path, sleep="30")
    runner = start(root, "run", "-j", "2")
    assert _wait_for(lambda: (root / ".repropack/runs/latest").exists()
                     and len(processes_with_marker(last_run_id(root))) >= 2)
    run_id = last_run_id(root)
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err
    assert processes_with_marker(run_id) == []
    records = [json.loads(line) for line in (root / ".repropack/journal.jsonl").read_text().splitlines()]
    assert records[-1]["t"] == "end" and records[-1]["status"] == "interrupted"
    assert not any(r["t"] == "done" for r in records)
    assert not list((root / "out").glob("*.txt"))
    assert repropack(root, "status", check=True).returncode == 0


def test_second_sigint_kills_at_once(tmp_path):
    root = _project(tmp_path, sleep="30", extra="")
    # a step that ignores SIGTERM: only the second Ctrl-C (SIGKILL) stops it
    (root / "repropack.toml").write_text((root / "repropack.toml").read_text().replace(
        "(sleep 300 &) ; sleep 30", "trap '' TERM; sleep 30"))
    runner = start(root, "run", "-j", "2")
    assert _wait_for(lambda: (root / ".repropack/runs/latest").exists()
                     and len(processes_with_marker(last_run_id(root))) >= 2)
    runner.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert runner.poll() is None  # still waiting for the steps that ignore SIGTERM
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=20)
    assert runner.returncode == 130
    assert os.path.exists(root / ".repropack/journal.jsonl")
