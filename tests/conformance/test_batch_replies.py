"""The aws-batch backend on DescribeJobs replies moto cannot produce (Spot reclaims, host terminations,
OOM kills, time-outs), in-process, with the AWS clients replaced by a scripted fake.

The replies follow the shape AWS documents for DescribeJobs (job ``status``, ``statusReason``,
``container.exitCode``/``reason``, ``attempts[]``); the reasons are the ones AWS gives, as quoted
in the AWS Batch user guide ("Automated job retries", "Troubleshooting").
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from repropack.backends.base import BackendContext, JobHandle, JobState
from repropack.backends.batch import aws, status
from repropack.backends.batch.watched import Watched

SPOT = {"jobId": "j-1", "status": "FAILED", "statusReason": "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated.",
        "startedAt": 1700000000000, "stoppedAt": 1700000100000,
        "attempts": [{"container": {"containerInstanceArn": "arn:aws:ecs:...", "logStreamName": "jd/default/j-1"},
                      "startedAt": 1700000000000, "stoppedAt": 1700000100000,
                      "statusReason": "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated."}],
        "container": {"logStreamName": "jd/default/j-1"}}
OOM = {"jobId": "j-2", "status": "FAILED", "statusReason": "Essential container in task exited",
       "attempts": [{"container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"},
                     "statusReason": "Essential container in task exited"}],
       "container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}}
TIMEOUT = {"jobId": "j-3", "status": "FAILED", "statusReason": "Job attempt duration exceeded timeout",
           "attempts": [{"container": {"exitCode": 137}, "statusReason": "Job attempt duration exceeded timeout"}]}
EXIT = {"jobId": "j-4", "status": "FAILED", "statusReason": "Essential container in task exited",
        "container": {"exitCode": 3}, "attempts": [{"container": {"exitCode": 3}}]}
CANCELLED = {"jobId": "j-5", "status": "FAILED", "statusReason": status.CANCEL_REASON}
RUNNING = {"jobId": "j-6", "status": "RUNNING", "startedAt": 1700000000000}
RUNNABLE = {"jobId": "j-7", "status": "RUNNABLE"}
STAGING = {"jobId": "j-8", "status": "FAILED", "container": {"exitCode": 96}}
NO_CAPACITY = {"jobId": "j-9", "status": "FAILED", "statusReason": "Task failed to start",
               "container": {"reason": "CannotPullContainerError: pull access denied"}}


@pytest.mark.parametrize("reply,state,failure,infrastructure", [
    (SPOT, JobState.FAILED, "lost", True),
    (OOM, JobState.FAILED, "oom", False),
    (TIMEOUT, JobState.FAILED, "timeout", False),
    (EXIT, JobState.FAILED, "exit", False),
    (CANCELLED, JobState.FAILED, "cancelled", False),
    (RUNNING, JobState.RUNNING, None, False),
    (RUNNABLE, JobState.PENDING, None, False),
    (STAGING, JobState.FAILED, "staging", False),
    (NO_CAPACITY, JobState.FAILED, "lost", True),
])
def test_describe_jobs_replies_read_as_the_runner_needs(reply, state, failure, infrastructure):
    got = status.read(reply)
    assert (got.state, got.failure, got.infrastructure) == (state, failure, infrastructure)


def test_a_running_job_starts_its_clock_when_batch_says_it_started():
    assert status.read(RUNNING).started == 1700000000.0
    assert status.read(EXIT).exit_code == 3


class FakeBatch:
    def __init__(self, replies):
        self.replies = replies  # job id -> list of replies, one per describe (the last repeats)
        self.submitted = []
        self.terminated = []

    def describe_job_queues(self, jobQueues):
        return {"jobQueues": [{"jobQueueName": q, "state": "ENABLED"} for q in jobQueues]}

    def describe_jobs(self, jobs):
        out = []
        for job in jobs:
            queue = self.replies.get(job, [])
            if queue:
                out.append(dict(queue.pop(0) if len(queue) > 1 else queue[0], jobId=job))
        return {"jobs": out}

    def submit_job(self, **kwargs):
        self.submitted.append(kwargs)
        return {"jobId": f"again-{len(self.submitted)}"}

    def terminate_job(self, jobId, reason):
        self.terminated.append((jobId, reason))


class FakeS3:
    def __init__(self):
        self.objects = {}

    def head_bucket(self, Bucket):
        return {}

    def put_object(self, Bucket, Key, Body, **_):
        self.objects[Key] = Body

    def get_object(self, Bucket, Key):
        from botocore.exceptions import ClientError

        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}


class FakeLogs:
    def get_log_events(self, **kwargs):  # as CloudWatch does: the end repeats its token with no events
        events = [] if kwargs.get("nextToken") else [{"message": "from cloudwatch"}]
        return {"events": events, "nextForwardToken": "t"}


@pytest.fixture
def fake(monkeypatch, tmp_path):
    batch, s3 = FakeBatch({}), FakeS3()

    class Clients:
        def __init__(self, settings):
            self.settings, self.batch, self.s3, self.logs, self.region = settings, batch, s3, FakeLogs(), "us-east-1"

    monkeypatch.setattr(aws, "Clients", Clients)
    from repropack.backends.batch.backend import BatchBackend

    profile = SimpleNamespace(name="cloud", options={"queue": "q", "bucket": "s3://b/p"})
    backend = BatchBackend(BackendContext(run_id="r1", root=tmp_path, profiles=(profile,)))
    return SimpleNamespace(backend=backend, batch=batch, s3=s3, root=tmp_path)


def watch(fake, job_id, submit=None):
    adir = fake.root / ".repropack" / "runs" / "r1" / "make-1" / "attempt-1"
    adir.mkdir(parents=True, exist_ok=True)
    handle = JobHandle("aws-batch", job_id, "make", 1)
    keys = {"results": "p/runs/r1/jobs/make-1/attempt-1/results.json", "stdout": "k/out", "stderr": "k/err"}
    receipt = {"instance": "make", "attempt": 1, "attempt_dir": str(adir), "outputs": [], "keys": keys,
               "requested": {"cpus": 1, "memory": None, "time": None, "gpus": 0}}
    fake.backend._watch[job_id] = Watched(handle, receipt, fake.backend.settings["cloud"], job_id,
                                          submit or {"jobName": "rp-make", "jobQueue": "q"})
    return handle, adir, keys


def test_a_spot_reclaim_is_resubmitted_and_not_counted_as_a_retry(fake):
    handle, adir, keys = watch(fake, "j-1")
    fake.batch.replies = {"j-1": [SPOT], "again-1": [RUNNING, {"status": "SUCCEEDED", "container": {"exitCode": 0, "logStreamName": "s"},
                                                               "startedAt": 1700000200000, "stoppedAt": 1700000300000}]}
    assert fake.backend.poll([handle]) == {}  # resubmitted: nothing terminal to report
    assert fake.batch.submitted == [{"jobName": "rp-make", "jobQueue": "q"}]
    assert "resubmitted as again-1" in fake.backend.notes[0]
    assert json.loads(fake.s3.objects["p/runs/r1/jobs/make-1/attempt-1/moved.json"])["batch_id"] == "again-1"
    assert fake.backend.poll([handle])["j-1"].state is JobState.RUNNING
    fake.s3.objects[keys["results"]] = json.dumps({"exit_status": 0, "outputs": [], "wall": 100.0}).encode()
    done = fake.backend.poll([handle])["j-1"]
    assert done.state is JobState.SUCCEEDED and done.handle == handle
    assert done.metrics["batch_job_id"] == "again-1" and done.metrics["resubmitted"][0].startswith("j-1: infrastructure")
    logs = list((fake.root / ".repropack" / "runs" / "r1" / "cloudwatch").glob("*.attempt-1.log"))
    assert [p.read_text() for p in logs] == ["from cloudwatch\n"]


def test_an_attempt_whose_machines_keep_vanishing_ends_lost(fake):
    handle, _, _ = watch(fake, "j-1")
    fake.batch.replies = {"j-1": [SPOT], **{f"again-{n}": [SPOT] for n in range(1, 5)}}
    for _ in range(3):
        assert fake.backend.poll([handle]) == {}
    done = fake.backend.poll([handle])["j-1"]
    assert done.state is JobState.FAILED and done.failure == "lost" and "Host EC2" in done.message
    assert len(fake.batch.submitted) == 3


def test_an_oom_kill_is_a_failure_of_the_step_not_resubmitted(fake):
    handle, _, _ = watch(fake, "j-2")
    fake.batch.replies = {"j-2": [OOM]}
    done = fake.backend.poll([handle])["j-2"]
    assert done.failure == "oom" and fake.batch.submitted == []


def test_a_succeeded_job_without_a_results_record_is_not_taken_as_done(fake):
    handle, _, _ = watch(fake, "j-4")
    fake.batch.replies = {"j-4": [{"status": "SUCCEEDED", "container": {"exitCode": 0}}]}
    done = fake.backend.poll([handle])["j-4"]
    assert done.state is JobState.FAILED and "no results record" in done.message


def test_cancel_terminates_the_job_batch_runs_now(fake):
    handle, _, _ = watch(fake, "j-6")
    fake.backend.cancel([handle])
    assert fake.batch.terminated == [("j-6", status.CANCEL_REASON)]
