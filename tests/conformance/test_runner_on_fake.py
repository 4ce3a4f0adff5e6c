"""The Runner in-process on the fake backend: retries, resume, time limits, failing polls, no spin.

The fake is registered as backend "fake" (the manifest accepts registered names) and
scripts each job by instance and attempt; it returns from poll at once, like a remote
backend, so the runner's own cadence is what is measured.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fakebackend import FakeBackend, FakeCluster, Script, fake_capabilities
from repropack.backends import registry
from repropack.backends.base import LOST, TIMEOUT
from repropack.errors import RunError, RunInterrupted
from repropack.manifest import load_manifest
from repropack.manifest.dag import expand
from repropack.run.journal import read_records
from repropack.run.runner import JOURNAL, Events, Runner, RunOptions

STEPS = """
[project]
name = "demo"

[profiles.remote]
backend = "fake"

[[steps]]
name = "make"
foreach = {{ n = [1, 2, 3] }}
outputs = ["out/{{n}}.txt"]
run = "echo {{n}} > {{outputs}}"
retries = {retries}
{resources}
"""


class Fake:
    """The registered fake: its scripts, its capabilities and the backends the runner made."""

    def __init__(self):
        self.cluster = FakeCluster()
        self.scripts = {}  # (step instance prefix, attempt) -> Script
        self.made: list[FakeBackend] = []
        self.fail_polls = 0
        self.caps = fake_capabilities()

    def script(self, job) -> Script:
        for (prefix, attempt), script in self.scripts.items():
            if job.instance_id.startswith(prefix) and attempt in (None, job.attempt):
                return script
        return Script("run")

    def factory(self, context) -> FakeBackend:
        backend = FakeBackend(self.cluster, scripts=self.script, enforces_time=self.caps.enforces_time,
                              survives=self.caps.survives_runner)
        backend.fail_polls = self.fail_polls
        self.made.append(backend)
        return backend

    @property
    def backend(self) -> FakeBackend:
        return self.made[-1]


@pytest.fixture
def fake():
    state = Fake()
    registry.register("fake", state.factory, lambda profile: state.caps)
    yield state
    registry.unregister("fake")


def project(root: Path, *, retries: int = 0, resources: str = "", extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = STEPS.format(retries=retries, resources=resources) + textwrap.dedent(extra)
    (root / "repropack.toml").write_text(text, encoding="utf-8")
    return root


def run(root: Path, **options):
    manifest = load_manifest(root)
    return Runner(manifest, expand(manifest), RunOptions(profile="remote", retry_backoff=0.05, **options)).run()


def test_runs_on_a_registered_backend_with_the_intent_before_each_start(fake, tmp_path):
    root = project(tmp_path / "p")
    result = run(root)
    assert result.status == "ok" and result.count("done") == 3
    assert sorted((root / "out").iterdir()) == [root / "out" / f"{n}.txt" for n in (1, 2, 3)]
    kinds = [(r["t"], r["id"]) for r in read_records(root / JOURNAL) if r["t"] in ("submit", "start")]
    for iid in {i for _, i in kinds}:
        assert [t for t, i in kinds if i == iid] == ["submit", "start"]
    assert {r.backend for r in result.results.values()} == {"fake"}
    assert sum(fake.backend.submit_calls) == 3


def test_retries_until_an_attempt_succeeds(fake, tmp_path):
    fake.scripts[("make[n=2]", 1)] = Script("exit", exit_code=7)
    result = run(project(tmp_path / "p", retries=1))
    assert result.status == "ok"
    assert result.results["make[n=2]"].attempts == 2 and result.results["make[n=1]"].attempts == 1


def test_a_failure_after_the_last_retry_fails_the_instance_with_its_class(fake, tmp_path):
    fake.scripts[("make[n=2]", None)] = Script("oom")
    result = run(project(tmp_path / "p", retries=1), keep_going=True)
    failed = result.results["make[n=2]"]
    assert (result.status, failed.status, failed.failure, failed.attempts) == ("failed", "failed", "oom", 2)
    assert failed.backend == "fake"


def test_resume_skips_what_is_done_and_submits_nothing(fake, tmp_path):
    root = project(tmp_path / "p")
    assert run(root).status == "ok"
    again = run(root)
    assert again.count("skipped") == 3 and fake.backend.submit_calls == []


def test_a_poll_that_fails_a_few_times_is_retried(fake, tmp_path):
    fake.fail_polls = 3
    result = run(project(tmp_path / "p"))
    assert result.status == "ok" and result.count("done") == 3


def test_a_poll_that_keeps_failing_ends_its_jobs_as_lost_with_the_error(fake, tmp_path):
    fake.fail_polls = 10_000
    fake.scripts[("make", None)] = Script("ok", runs=60)
    began = time.monotonic()
    result = run(project(tmp_path / "p"), keep_going=True)
    assert time.monotonic() - began < 10
    for iid in ("make[n=1]", "make[n=2]", "make[n=3]"):
        assert result.results[iid].failure == LOST
        assert "could not be polled 4 times" in result.results[iid].message
        assert "controller did not answer" in result.results[iid].message
    assert fake.backend.polls == 4  # one failure and three retries, then lost


def test_a_backend_that_returns_at_once_does_not_make_the_runner_spin(fake, tmp_path):
    fake.scripts[("make", None)] = Script("run", runs=1.5)
    began = time.monotonic()
    result = run(project(tmp_path / "p"))
    elapsed = time.monotonic() - began
    assert result.status == "ok"
    polls = fake.backend.polls
    # at most one poll per poll_interval, plus one after each finished batch
    assert polls <= elapsed / FakeBackend.poll_interval + 5, (polls, elapsed)
    assert polls >= 3  # it did poll while the jobs ran


class Notes(Events):
    def __init__(self):
        self.said: list[str] = []

    def note(self, message: str) -> None:
        self.said.append(message)


def test_what_a_backend_learns_is_said_once_however_often_it_is_polled(fake, tmp_path):
    fake.scripts[("make", None)] = Script("run", runs=1.0)
    original = fake.factory

    def factory(context):
        backend = original(context)
        backend.say_on_poll = {2: "sacct does not answer: relying on squeue", 5: "a second thing"}
        return backend

    registry.register("fake", factory, lambda profile: fake.caps)
    manifest = load_manifest(project(tmp_path / "p"))
    notes = Notes()
    result = Runner(manifest, expand(manifest), RunOptions(profile="remote", retry_backoff=0.05), notes).run()
    assert result.status == "ok" and fake.backend.polls >= 6
    said = [n for n in notes.said if n.startswith("fake: ")]
    assert said == ["fake: sacct does not answer: relying on squeue", "fake: a second thing"]


def test_the_time_limit_counts_from_when_the_job_runs_not_from_its_submission(fake, tmp_path):
    fake.scripts[("make", None)] = Script("run", queued=3.0, runs=0.5)  # 3.5 s after submission
    result = run(project(tmp_path / "p", resources='resources = { time = "2s" }'))
    assert result.status == "ok", [(r.id, r.failure, r.message) for r in result.results.values()]


def test_the_runner_stops_a_job_over_its_limit_when_the_backend_does_not(fake, tmp_path):
    fake.scripts[("make[n=1]", None)] = Script("ok", runs=30)
    began = time.monotonic()
    result = run(project(tmp_path / "p", resources='resources = { time = "1s" }'), keep_going=True)
    assert result.results["make[n=1]"].failure == TIMEOUT
    assert time.monotonic() - began < 10
    assert any(job.cancelled for job in fake.cluster.jobs.values())


def test_a_backend_that_enforces_time_is_left_to_do_it(fake, tmp_path):
    fake.caps = fake_capabilities(enforces_time=True)
    fake.scripts[("make[n=1]", None)] = Script("ok", runs=30)
    result = run(project(tmp_path / "p", resources='resources = { time = "1s" }'), keep_going=True)
    assert result.results["make[n=1]"].failure == TIMEOUT
    assert not any(job.cancelled for job in fake.cluster.jobs.values())  # the backend's own TIMEOUT


def test_a_resource_above_the_backends_capacity_is_refused_before_anything_runs(fake, tmp_path):
    root = project(tmp_path / "p", resources="resources = { cpus = 16 }")
    with pytest.raises(RunError) as info:
        run(root)
    text = str(info.value)
    assert "make[n=1] asks for 16 cpus but profile 'remote' (backend 'fake') has at most 8 cpu(s)" in text
    assert not fake.made and not (root / ".repropack" / "runs").exists()


PIPED = """
[[steps]]
name = "produce"
outputs = [{ path = "stream.txt", pipe = true }]
run = "seq 3 > {outputs}"

[[steps]]
name = "consume"
inputs = ["stream.txt"]
outputs = ["count.txt"]
run = "wc -l < {inputs} > {outputs}"
"""


def test_a_pipe_group_on_a_backend_that_cannot_co_schedule_is_refused_at_plan_time(fake, tmp_path):
    root = project(tmp_path / "p", extra=PIPED)
    with pytest.raises(RunError) as info:
        run(root)
    assert "step 'produce': profile 'remote' uses backend 'fake', which cannot start a pipe group" in str(info.value)
    assert not fake.made


def test_ctrl_c_cancels_what_runs_and_keeps_what_finished(fake, tmp_path):
    fake.scripts[("make[n=3]", None)] = Script("ok", runs=60)
    root = project(tmp_path / "p")
    stop = threading.Event()

    def interrupt_once_two_are_done():
        while not stop.wait(0.05):
            if len({r["id"] for r in read_records(root / JOURNAL, kinds=("done",))}) == 2:
                os.kill(os.getpid(), signal.SIGINT)
                return

    watcher = threading.Thread(target=interrupt_once_two_are_done, daemon=True)
    watcher.start()
    began = time.monotonic()
    try:
        with pytest.raises(RunInterrupted):
            run(root, jobs=8)
    finally:
        stop.set()
        watcher.join()
    assert time.monotonic() - began < 30
    assert any(job.cancelled for job in fake.cluster.jobs.values())
    done = {r["id"] for r in read_records(tmp_path / "p" / JOURNAL) if r["t"] == "done"}
    failed = {r["id"]: r["failure"] for r in read_records(tmp_path / "p" / JOURNAL) if r["t"] == "failed"}
    assert done == {"make[n=1]", "make[n=2]"} and failed == {"make[n=3]": "cancelled"}


def test_an_unavailable_backend_is_refused_before_anything_runs(tmp_path):
    from repropack.backends import registry
    from repropack.backends.base import Capabilities

    root = project(tmp_path / "p")
    (root / "repropack.toml").write_text((root / "repropack.toml").read_text().replace('"fake"', '"later"'))
    registry.register("later", None, Capabilities())  # known to the manifest, no factory yet
    try:
        with pytest.raises(RunError, match="profile 'remote': the later backend is not available yet"):
            run(root)
    finally:
        registry.unregister("later")


def test_readers_skip_record_types_they_do_not_know(fake, tmp_path, capsys):
    """A crash between the submit intent and the start record, and records of a newer kind, read fine."""
    import json

    from repropack.cli import main
    from repropack.run.journal import Journal

    root = project(tmp_path / "p")
    fake.scripts[("make[n=3]", None)] = Script("exit")
    result = run(root, keep_going=True)
    with Journal(root / JOURNAL, result.run_id) as journal:
        journal.append("submit", id="make[n=3]", attempt=2, backend="fake")  # then the runner died
        journal.append("some-later-kind", id="make[n=1]", detail={"x": 1})
    assert main(["status", "--json", "-C", str(root)]) == 0
    table = json.loads(capsys.readouterr().out)["instances"]
    assert {iid: entry["state"] for iid, entry in table.items()} == {
        "make[n=1]": "done", "make[n=2]": "done", "make[n=3]": "failed"}
    assert main(["report", "--json", "-C", str(root)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {iid: entry["state"] for iid, entry in report["instances"].items()} == {
        "make[n=1]": "done", "make[n=2]": "done", "make[n=3]": "failed"}
