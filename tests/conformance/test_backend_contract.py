"""The backend contract (repropack.backends.base), the same tests for every backend.

Parametrised over the in-memory fake (scripted outcomes) and the local backend (real
processes on the host runtime). SLURM and AWS Batch join by adding a kit in conftest.py.
"""

from __future__ import annotations

import time

import pytest
from backendkit import FakeKit, settle
from repropack.backends.base import CANCELLED, EXIT, LOST, OOM, SIGNAL, JobHandle, JobState


def terminal(statuses):
    """The contract lets poll include non-terminal statuses: only the terminal ones count here."""
    return {job_id: s for job_id, s in statuses.items() if s.state.terminal}


def test_submit_writes_the_script_and_poll_reports_success(kit):
    with kit.backend() as backend:
        job = kit.job("ok")
        handle = backend.submit(job)
        assert handle.backend == backend.name and handle.job_id
        assert (handle.instance_id, handle.attempt) == (job.instance_id, 1)
        assert job.script_path.read_text() == job.script
        status = settle(backend, [handle])[handle.job_id]
        assert status.state is JobState.SUCCEEDED and status.exit_code == 0 and status.failure is None


def test_submit_many_gives_one_handle_per_job_in_order_and_poll_checks_them_together(kit):
    with kit.backend() as backend:
        kinds = ["ok", "exit", "ok", "exit", "ok"]
        jobs = [kit.job(kind) for kind in kinds]
        handles = backend.submit_many(jobs)
        assert [h.instance_id for h in handles] == [j.instance_id for j in jobs]
        assert len({h.job_id for h in handles}) == len(jobs)
        statuses = settle(backend, handles)
        got = [statuses[h.job_id].failure for h in handles]
        assert got == [None, EXIT, None, EXIT, None]
        assert all(statuses[h.job_id].exit_code == 3 for h, k in zip(handles, kinds) if k == "exit")


def test_a_terminal_status_is_reported_until_forgotten(kit):
    with kit.backend() as backend:
        handle = backend.submit(kit.job("exit"))
        first = settle(backend, [handle])[handle.job_id]
        again = backend.poll([handle], wait=0.0)
        assert again[handle.job_id].failure == first.failure == EXIT
        backend.forget([handle])


@pytest.mark.parametrize("kind,failure", [("exit", EXIT), ("signal", SIGNAL)])
def test_failure_classes_exit_and_signal(kit, kind, failure):
    with kit.backend() as backend:
        handle = backend.submit(kit.job(kind))
        status = settle(backend, [handle])[handle.job_id]
        assert status.state is JobState.FAILED and status.failure == failure
        if failure == SIGNAL:
            assert status.signal == 9 and status.exit_code == 137


def test_failure_class_oom(kit):
    reason = kit.oom_reason()
    if reason:
        pytest.skip(reason)
    with kit.backend() as backend:
        handle = backend.submit(kit.job("oom", memory=100_000_000))
        status = settle(backend, [handle])[handle.job_id]
        assert status.failure == OOM


def test_cancel_ends_a_running_job_as_cancelled(kit):
    with kit.backend() as backend:
        handle = backend.submit(kit.job("sleep"))
        assert not terminal(backend.poll([handle], wait=0.1))  # still running
        began = time.monotonic()
        backend.cancel([handle])
        status = settle(backend, [handle], timeout=10)[handle.job_id]
        assert status.failure == CANCELLED and time.monotonic() - began < 10


def test_force_cancel_kills_at_once(kit):
    with kit.backend() as backend:
        handles = backend.submit_many([kit.job("sleep"), kit.job("sleep")])
        backend.cancel(handles, force=True)
        statuses = settle(backend, handles, timeout=10)
        assert {s.failure for s in statuses.values()} == {CANCELLED}


def test_poll_with_nothing_finished_returns_within_its_wait(kit):
    with kit.backend() as backend:
        handle = backend.submit(kit.job("sleep"))
        began = time.monotonic()
        assert not terminal(backend.poll([handle], wait=0.3))
        assert time.monotonic() - began < 0.3 + 2.0  # blocks at most wait (+ the engine's own time-out)
        backend.cancel([handle], force=True)
        settle(backend, [handle])


def test_adopt_of_a_backend_whose_jobs_do_not_survive_reports_lost_within_a_poll(kit):
    with kit.backend() as backend:
        orphan = JobHandle(backend.name, "999999999", "gone", 1)  # an earlier runner's job
        backend.adopt([orphan])
        began = time.monotonic()
        status = backend.poll([orphan], wait=5.0)[orphan.job_id]
        assert status.failure == LOST and status.message
        assert time.monotonic() - began < 1.0  # a lost handle does not wait out the poll


def test_fake_adopt_re_attaches_when_jobs_survive(tmp_path):
    kit = FakeKit(tmp_path)
    first = kit.backend(survives=True)
    handle = first.submit(kit.job("exit"))
    del first  # the runner died; the jobs did not
    second = kit.backend(survives=True)
    second.adopt([handle])
    assert settle(second, [handle])[handle.job_id].failure == EXIT


def test_submit_many_returns_the_error_of_a_job_that_cannot_be_submitted(kit):
    with kit.backend() as backend:
        good, bad = kit.job("ok"), kit.job("ok")
        bad.attempt_dir.rmdir()  # its script cannot be written
        results = backend.submit_many([good, bad])
        assert isinstance(results[0], JobHandle) and isinstance(results[1], Exception)
        settle(backend, [results[0]])


@pytest.mark.slurm
def test_slurm_adopt_re_attaches_to_jobs_an_earlier_backend_submitted(tmp_path):
    from backendkit import SlurmKit

    kit = SlurmKit(tmp_path)
    first = kit.backend()
    handles = first.submit_many([kit.job("exit"), kit.job("ok")])
    del first  # the runner died; the jobs did not
    second = kit.backend()
    second.adopt(handles)
    statuses = settle(second, handles, timeout=60)
    assert [statuses[h.job_id].failure for h in handles] == [EXIT, None]


@pytest.mark.slurm
def test_slurm_adopt_finds_a_job_journaled_only_as_an_intent(tmp_path):
    """The runner died between sbatch and its start record: the job is found by run id and instance."""
    from backendkit import SlurmKit

    kit = SlurmKit(tmp_path)
    first = kit.backend()
    jobs = [kit.job("exit"), kit.job("ok")]
    submitted = first.submit_many(jobs)
    del first
    intents = [JobHandle("slurm", f"?conf/{j.instance_id}/1", j.instance_id, 1) for j in jobs]
    (tmp_path / ".repropack" / "slurm" / "jobs.jsonl").unlink()  # nor did it note the array
    second = kit.backend()
    second.adopt(intents)
    statuses = settle(second, intents, timeout=60)
    assert [statuses[h.job_id].failure for h in intents] == [EXIT, None], [s.message for s in statuses.values()]
    assert [statuses[h.job_id].metrics["job_id"] for h in intents] == [h.job_id for h in submitted]
