"""aws-batch on a moto server: failing steps, missing outputs, changed inputs and bad profiles."""

from __future__ import annotations

import hashlib

import pytest
from cloudhelp import BUCKET, QUEUE, cloud_profile, journal, run_cli, write_project

pytestmark = [pytest.mark.docker, pytest.mark.registry]

HEAD = """
[project]
name = "fails"
version = "1.0.0"

[image]
name = "{image}"
"""


def project(root, image, steps, files=None, **profile):
    return write_project(root, HEAD.format(image=image) + steps + cloud_profile(**profile),
                         files or {"data/in.txt": "some words here\n"})


def last_failed(root):
    return [r for r in journal(root) if r["t"] == "failed"][-1]


def test_a_failing_step_is_retried_then_fails_with_its_exit_code_and_streams(tmp_path, base_image, aws_env):
    steps = '[[steps]]\nname = "bad"\nrun = "echo going wrong >&2; exit 3"\noutputs = ["out/x"]\nretries = 1\n'
    root = project(tmp_path / "p", base_image, steps)
    done = run_cli(root, "run", "--profile", "cloud", env=aws_env)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = last_failed(root)
    assert failed["failure"] == "exit" and failed["attempts"] == 2 and "exit code 3" in failed["message"]
    attempts = [r for r in journal(root) if r["t"] == "attempt"]
    assert [a["metrics"]["backend"] for a in attempts] == ["aws-batch", "aws-batch"]
    stderr = sorted((root / ".repropack" / "runs").glob("2*/failed/bad-*/attempt-2/stderr"))[-1]
    assert stderr.read_text() == "going wrong\n"


def test_a_job_that_exits_0_without_its_output_fails_as_missing_output(tmp_path, base_image, aws_env):
    steps = '[[steps]]\nname = "lazy"\nrun = "true {outputs}"\noutputs = ["out/never"]\n'
    root = project(tmp_path / "p", base_image, steps)
    assert run_cli(root, "run", "--profile", "cloud", env=aws_env).returncode == 1
    failed = last_failed(root)
    assert failed["failure"] == "missing-output" and "out/never" in failed["message"]
    assert not (root / "out" / "never").exists()


def test_an_input_changed_in_the_bucket_since_upload_is_reported_and_never_used(tmp_path, base_image, moto_server,
                                                                                 aws_env):
    steps = '[[steps]]\nname = "copy"\nrun = "cp {inputs} {outputs}"\ninputs = ["data/in.txt"]\noutputs = ["out/copy"]\n'
    root = project(tmp_path / "p", base_image, steps, files={"data/in.txt": "the true input\n"},
                   bucket=f"s3://{BUCKET}/changed")
    digest = hashlib.sha256(b"the true input\n").hexdigest()
    # the object the bucket holds under the input's digest is not those bytes any more
    moto_server.client("s3").put_object(Bucket=BUCKET, Key=f"changed/cas/sha256/{digest}", Body=b"tampered\n")
    assert run_cli(root, "run", "--profile", "cloud", env=aws_env).returncode == 1
    failed = last_failed(root)
    assert failed["failure"] == "staging" and "changed since it was uploaded" in failed["message"]
    assert digest in failed["message"] and not (root / "out" / "copy").exists()


@pytest.mark.parametrize("what,profile,expected", [
    ("queue", {"queue": "no-such-queue"}, "the job queue 'no-such-queue' does not exist"),
    ("bucket", {"bucket": "s3://no-such-bucket/x"}, "the bucket 'no-such-bucket' does not exist"),
])
def test_a_queue_or_bucket_that_does_not_exist_is_refused_before_any_job(tmp_path, base_image, moto_server, aws_env,
                                                                        what, profile, expected):
    steps = '[[steps]]\nname = "one"\nrun = "echo 1 > {outputs}"\noutputs = ["out/one"]\n'
    root = project(tmp_path / "p", base_image, steps, **profile)
    before = moto_server.client("batch").list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["*"]}])
    done = run_cli(root, "run", "--profile", "cloud", env=aws_env)
    assert done.returncode != 0 and expected in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # one line (and its hint), no traceback
    assert not [r for r in journal(root) if r["t"] == "submit"]
    after = moto_server.client("batch").list_jobs(jobQueue=QUEUE, filters=[{"name": "JOB_NAME", "values": ["*"]}])
    assert len(after["jobSummaryList"]) == len(before["jobSummaryList"])


def test_missing_credentials_are_one_clear_error_and_nothing_is_submitted(tmp_path, base_image, aws_env):
    steps = '[[steps]]\nname = "one"\nrun = "echo 1 > {outputs}"\noutputs = ["out/one"]\n'
    root = project(tmp_path / "p", base_image, steps)
    env = {k: v for k, v in aws_env.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    done = run_cli(root, "run", "--profile", "cloud", env=env)
    assert done.returncode != 0 and "no AWS credentials found" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not [r for r in journal(root) if r["t"] == "submit"]


def test_an_image_in_neither_the_engine_nor_the_registry_is_a_clear_error(tmp_path, aws_env):
    steps = '[[steps]]\nname = "one"\nrun = "echo 1 > {outputs}"\noutputs = ["out/one"]\n'
    root = project(tmp_path / "p", "repropack-test/not-built-anywhere:1", steps)
    done = run_cli(root, "run", "--profile", "cloud", env=aws_env)
    assert done.returncode == 1
    failed = last_failed(root)
    assert "repropack-test/not-built-anywhere:1 is neither in the local Docker engine nor in 127.0.0.1:5000" in \
        failed["message"]
    assert not [r for r in journal(root) if r["t"] == "start"]
