"""The aws-batch backend in-process against the moto server: adopt after a restart, corrupted downloads."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from cloudhelp import BUCKET, QUEUE

from repropack.backends.base import BackendContext, Job, JobResources, JobState
from repropack.run.attempt import render_script

pytestmark = [pytest.mark.docker, pytest.mark.registry]


def profile(prefix):
    return SimpleNamespace(name="cloud", options={"queue": QUEUE, "bucket": f"s3://{BUCKET}/{prefix}"})


def backend(root, run_id, prefix):
    from repropack.backends.batch.backend import BatchBackend

    return BatchBackend(BackendContext(run_id=run_id, root=root, profiles=(profile(prefix),)))


def job(root, run_id, image, command, output="out/result.txt"):
    adir = root / ".repropack" / "runs" / run_id / "make-1" / "attempt-1"
    adir.mkdir(parents=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "in.txt").write_text("input bytes\n")
    return Job(instance_id="make", attempt=1, run_id=run_id, project=root, attempt_dir=adir,
               script=render_script("make", 1, command), env={"LC_ALL": "C.UTF-8"},
               resources=JobResources(cpus=1), runtime="docker", image=image, step="make",
               outputs=((output, output),), inputs=("data/in.txt",), profile="cloud")


def wait_batch(moto_server, job_id, states=("SUCCEEDED", "FAILED"), timeout=120):
    batch = moto_server.client("batch")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = batch.describe_jobs(jobs=[job_id])["jobs"]
        if found and found[0]["status"] in states:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"{job_id} not in {states} after {timeout} s")


def poll_until_terminal(b, handle, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = b.poll([handle]).get(handle.job_id)
        if got is not None and got.state.terminal:
            return got
        time.sleep(0.5)
    raise AssertionError("not terminal")


def test_a_restarted_runner_adopts_the_job_and_collects_its_verified_output(tmp_path, base_image, moto_server, aws_env):
    root = tmp_path / "p"
    first = backend(root, "run-a", "adopt")
    handle = first.submit(job(root, "run-a", base_image, "sleep 2; tr a-z A-Z < data/in.txt > out/result.txt"))
    del first  # the runner died: nothing closed, nothing cleaned up, the job runs on
    second = backend(root, "run-b", "adopt")
    second.adopt([handle])
    done = poll_until_terminal(second, handle)
    assert done.state is JobState.SUCCEEDED, done.message
    assert (root / "out" / "result.txt").read_text() == "INPUT BYTES\n"
    assert done.metrics["batch_job_id"] == handle.job_id
    # the adopted attempt's objects (outputs, streams, results) go once it is collected
    assert not [k for k in moto_server.objects(BUCKET) if k.startswith("adopt/runs/run-a/jobs/")]
    second.forget([handle])
    second.close()
    stager = second.stager(second.settings["cloud"])
    stager.remove_prefix("adopt/runs/run-a/")  # what the dead runner left (its own close never came)


def test_a_download_that_does_not_match_the_job_side_digest_is_never_used(tmp_path, base_image, moto_server, aws_env):
    root = tmp_path / "p"
    b = backend(root, "run-c", "corrupt")
    handle = b.submit(job(root, "run-c", base_image, "echo real > out/result.txt"))
    wait_batch(moto_server, handle.job_id)
    from repropack.run.rundir import instance_dirname

    key = b.stager(b.settings["cloud"]).run_key("jobs", instance_dirname("make"), "attempt-1", "out-0")
    moto_server.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"corrupted in transit\n")
    done = b.poll([handle])[handle.job_id]
    assert done.state is JobState.FAILED and done.failure == "digest-mismatch"
    assert "out/result.txt" in done.message and "not used" in done.message
    assert not (root / "out" / "result.txt").exists()
    assert not list((root / ".repropack").rglob(".download-*"))
    b.forget([handle])
    b.close()
    assert not [k for k in moto_server.objects(BUCKET) if k.startswith("corrupt/runs/")]
