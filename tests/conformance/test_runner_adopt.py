"""Resume after a killed runner, on the fake backend: the killed run's unfinished attempts are adopted.

A killed run is written into the journal by hand (a `run` record with no `end`, a `submit`
intent and maybe a `start`), with its job living on in the fake cluster when jobs survive.
"""

from __future__ import annotations

import json
import time

from fakebackend import FakeJob, Script, fake_capabilities
from repropack.backends.base import JobHandle
from repropack.run import rundir
from repropack.run.adopt import unfinished
from repropack.run.journal import read_records
from repropack.run.runner import JOURNAL
from test_runner_on_fake import fake, project, run  # noqa: F401 - `fake` is the fixture

KILLED = "20260101T000000Z-dead00"


def kill_a_run(root, *records):
    (root / JOURNAL).parent.mkdir(exist_ok=True)
    with open(root / JOURNAL, "a", encoding="utf-8") as journal:
        for kind, fields in (("run", {"start": time.time()}), *records):
            journal.write(json.dumps({"v": 1, "t": kind, "run": KILLED, **fields}, separators=(",", ":")) + "\n")


def this_run(root):
    records = list(read_records(root / JOURNAL))
    last = [r for r in records if r["t"] == "run"][-1]["run"]
    return [r for r in records if r["run"] == last]


def test_a_job_that_survived_is_adopted_and_waited_for_before_anything_is_submitted(fake, tmp_path):
    fake.caps = fake_capabilities(survives=True)
    root = project(tmp_path / "p")
    assert run(root).status == "ok"
    (root / "out" / "1.txt").unlink()  # it must run again, but not while the killed run's job still runs
    handle = JobHandle("fake", "fake-77", "make[n=1]", 1, started=time.time())
    fake.cluster.jobs["fake-77"] = FakeJob(handle, None, Script("exit", runs=0.3), time.time(), time.time())
    kill_a_run(root, ("submit", {"id": "make[n=1]", "attempt": 1, "backend": "fake"}),
               ("start", {"id": "make[n=1]", "attempt": 1, "backend": "fake", "job": "fake-77"}))
    assert unfinished(root / JOURNAL) == {"fake": [JobHandle("fake", "fake-77", "make[n=1]", 1)]}
    result = run(root)
    assert result.status == "ok" and result.results["make[n=1]"].status == "done"
    kinds = [(r["t"], r.get("id")) for r in this_run(root) if r["t"] in ("adopted", "submit")]
    assert kinds == [("adopted", "make[n=1]"), ("submit", "make[n=1]")]
    adopted = next(r for r in this_run(root) if r["t"] == "adopted")
    assert (adopted["job"], adopted["status"], adopted["failure"]) == ("fake-77", "failed", "exit")
    assert fake.cluster.jobs["fake-77"].status is not None  # it ran to its end: never two at once


def test_an_intent_without_a_start_is_adopted_and_reported_lost_when_jobs_do_not_survive(fake, tmp_path):
    root = project(tmp_path / "p")
    kill_a_run(root, ("submit", {"id": "make[n=2]", "attempt": 1, "backend": "fake"}))
    result = run(root)
    assert result.status == "ok" and result.count("done") == 3
    adopted = [r for r in this_run(root) if r["t"] == "adopted"]
    assert [(r["id"], r["failure"]) for r in adopted] == [("make[n=2]", "lost")]
    submits = [r["id"] for r in this_run(root) if r["t"] == "submit"]
    assert submits.count("make[n=2]") == 1  # submitted once, by this run


def test_what_ended_or_a_run_that_ended_is_not_adopted(fake, tmp_path):
    root = project(tmp_path / "p")
    assert run(root).status == "ok"
    assert unfinished(root / JOURNAL) == {}  # the last run has its `end`
    kill_a_run(root, ("submit", {"id": "make[n=1]", "attempt": 1, "backend": "fake"}),
               ("start", {"id": "make[n=1]", "attempt": 1, "backend": "fake", "job": "fake-5"}),
               ("attempt", {"id": "make[n=1]", "attempt": 1, "status": "ok"}),
               ("submit", {"id": "make[n=3]", "attempt": 2, "backend": "fake"}),
               ("failed", {"id": "make[n=3]", "step": "make", "failure": "exit"}))
    assert unfinished(root / JOURNAL) == {}


def test_the_local_backend_reports_an_adopted_job_lost_and_the_instance_runs_again(tmp_path):
    from repropack.manifest import load_manifest
    from repropack.manifest.dag import expand
    from repropack.run.runner import Runner, RunOptions

    root = tmp_path / "p"
    root.mkdir()
    (root / "repropack.toml").write_text('[project]\nname = "demo"\n\n[[steps]]\nname = "make"\n'
                                         'outputs = ["out.txt"]\nrun = "echo hi > {outputs}"\n', encoding="utf-8")
    manifest = load_manifest(root)
    dag = expand(manifest)
    (iid,) = dag.instances
    kill_a_run(root, ("submit", {"id": iid, "attempt": 1, "backend": "local"}),
               ("start", {"id": iid, "attempt": 1, "backend": "local", "job": "4194000"}))
    result = Runner(manifest, dag, RunOptions()).run()
    assert result.status == "ok" and (root / "out.txt").read_text() == "hi\n"
    adopted = [r for r in this_run(root) if r["t"] == "adopted"]
    assert [(r["id"], r["job"], r["failure"]) for r in adopted] == [(iid, "4194000", "lost")]


def test_whether_the_last_run_ended_is_read_from_the_tail_whatever_the_block_size(tmp_path):
    from repropack.run.adopt import _last_run_ended

    root = tmp_path / "p"
    root.mkdir()
    kill_a_run(root, ("submit", {"id": "a", "attempt": 1, "backend": "fake"}))
    for chunk in (1, 2, 7, 64, 1 << 16):
        assert _last_run_ended(root / JOURNAL, chunk=chunk) is False
    with open(root / JOURNAL, "a", encoding="utf-8") as journal:
        journal.write(json.dumps({"v": 1, "t": "end", "run": KILLED}, separators=(",", ":")) + "\n")
    for chunk in (1, 2, 7, 64, 1 << 16):
        assert _last_run_ended(root / JOURNAL, chunk=chunk) is True
    assert _last_run_ended(root / "absent.jsonl") is True


def _killed_success(fake, root, content: bytes, reported: bytes):
    """A killed run whose job for make[n=1] succeeded after it died: its output staged in that run's
    slot, its job side reporting ``reported``'s digest. Returns how many jobs the fake got so far."""
    import hashlib

    from repropack.backends.base import JobState, JobStatus

    fake.caps = fake_capabilities(survives=True)
    assert run(root).status == "ok"
    key = next(r for r in read_records(root / JOURNAL) if r["t"] == "start" and r["id"] == "make[n=1]")["key"]
    (root / "out" / "1.txt").unlink()  # its inputs are unchanged: only the killed run's job can make it
    slot = rundir.run_root(root, KILLED) / "scratch" / "1"
    (slot / "home").mkdir(parents=True)
    (slot / "out-0-1.txt").write_bytes(content)
    handle = JobHandle("fake", "fake-78", "make[n=1]", 1, started=time.time())
    outputs = [{"path": "out/1.txt", "sha256": hashlib.sha256(reported).hexdigest(), "size": len(reported),
                "type": "file"}]
    job = FakeJob(handle, None, Script("ok"), time.time(), time.time())
    job.status = JobStatus(handle, JobState.SUCCEEDED, exit_code=0, started=time.time(),
                           metrics={"start": time.time(), "end": time.time(), "exit_code": 0, "outputs": outputs})
    fake.cluster.jobs["fake-78"] = job
    kill_a_run(root, ("submit", {"id": "make[n=1]", "attempt": 1, "backend": "fake"}),
               ("start", {"id": "make[n=1]", "attempt": 1, "backend": "fake", "job": "fake-78",
                          "slot": str(slot.relative_to(root)), "key": key}))
    return len(fake.cluster.jobs)


def test_an_adopted_job_that_succeeded_is_collected_and_not_run_again(fake, tmp_path):
    root = project(tmp_path / "p")
    before = _killed_success(fake, root, b"1\n", b"1\n")
    result = run(root)
    assert result.status == "ok" and result.results["make[n=1]"].status == "done"
    assert (root / "out" / "1.txt").read_bytes() == b"1\n"  # published from the killed run's slot
    assert [r["id"] for r in this_run(root) if r["t"] == "submit"] == []  # nothing submitted again
    assert len(fake.cluster.jobs) == before
    done = [r for r in this_run(root) if r["t"] == "done"]
    assert [r["id"] for r in done] == ["make[n=1]"] and done[0]["outputs"]["out/1.txt"]
    assert run(root).results["make[n=1]"].status == "skipped"  # and it counts as made


def test_an_adopted_success_whose_output_differs_from_the_reported_digest_runs_again(fake, tmp_path):
    root = project(tmp_path / "p")
    _killed_success(fake, root, b"tampered\n", b"1\n")
    result = run(root)
    assert result.status == "ok" and result.results["make[n=1]"].status == "done"
    assert [r["id"] for r in this_run(root) if r["t"] == "submit"] == ["make[n=1]"]
    assert (root / "out" / "1.txt").read_text() == "1\n"  # made again by its own job
    lines = (rundir.run_root(root, result.run_id) / "instances.jsonl").read_text().splitlines()
    assert sum('"make[n=1]"' in line for line in lines) == 1  # one instance line, not one per try
