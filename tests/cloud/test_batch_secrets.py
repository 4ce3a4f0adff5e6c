"""No credential is ever written anywhere a run on aws-batch leaves a trace.

The moto server is reached with distinctive planted credentials (cloudhelp.ACCESS_KEY/SECRET_KEY); after a
run, the project (records, journal, outputs, logs, provenance crate), the published archive unpacked, every object in the bucket, the job definitions and
jobs as DescribeJobDefinitions and DescribeJobs return them, the CloudWatch log events and the runner's
own output are searched. The secret key appears nowhere. The access key *id* appears only inside the
presigned URLs of the jobs' commands (SigV4 puts it in X-Amz-Credential; it is an identifier, not a
secret, and those URLs expire) and nowhere the run keeps.
"""

from __future__ import annotations

import json

import pytest
from cloudhelp import ACCESS_KEY, BUCKET, SECRET_KEY, batch_job_ids, cloud_profile, run_cli, write_project

pytestmark = [pytest.mark.docker, pytest.mark.registry]

MANIFEST = """
[project]
name = "secrets"
version = "1.0.0"

[image]
name = "{image}"

[[steps]]
name = "env"
run = "env | sort > {{outputs}}; env >&2"
outputs = ["out/env.txt"]

[[steps]]
name = "fail"
run = "env; exit 4"
outputs = ["out/never"]
"""


def files_under(root):
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path, path.read_bytes()


def test_planted_credentials_appear_nowhere_the_run_leaves(tmp_path, base_image, moto_server, aws_env):
    root = write_project(tmp_path / "p", MANIFEST.format(image=base_image) + cloud_profile(
        bucket=f"s3://{BUCKET}/secrets"), {})
    run_cli(root, "lock", env=aws_env, check=True)  # (no environment: the lock only pins the manifest) for `pack`
    done = run_cli(root, "run", "--profile", "cloud", "--keep-going", env=aws_env)
    assert done.returncode == 1  # `fail` fails on purpose: a failed attempt's records are searched too
    report = run_cli(root, "report", env=aws_env)
    archive = tmp_path / "published.tar.zst"
    packed = run_cli(root, "pack", "-o", str(archive), "--with-outputs", env=aws_env)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    import subprocess

    from cloudhelp import CLI

    unpack = subprocess.run([*CLI, "unpack", str(archive), str(tmp_path / "unpacked")], capture_output=True, text=True,
                            timeout=300)
    assert unpack.returncode == 0, unpack.stdout + unpack.stderr
    status = run_cli(root, "status", "--json", env=aws_env)
    logs = run_cli(root, "logs", "fail", env=aws_env)
    secret, key_id = SECRET_KEY.encode(), ACCESS_KEY.encode()
    # the runner's output
    for shown in (done, report, status, logs, packed):
        assert SECRET_KEY not in shown.stdout + shown.stderr and ACCESS_KEY not in shown.stdout + shown.stderr
    # the project: records, journal, outputs, streams, CloudWatch copies, report
    searched = 0
    for path, data in files_under(root):
        searched += 1
        assert secret not in data and key_id not in data, path
    assert searched > 10
    # the published archive, unpacked (records, provenance crate, outputs)
    unpacked = list(files_under(tmp_path / "unpacked"))
    assert unpacked and all(secret not in data and key_id not in data for _, data in unpacked)
    assert secret not in archive.read_bytes()
    # every object in the bucket (what the run left: its inputs by content)
    for key, data in moto_server.objects(BUCKET).items():
        assert secret not in data and key_id not in data, key
    batch, logs_client = moto_server.client("batch"), moto_server.client("logs")
    definitions = json.dumps(batch.describe_job_definitions()["jobDefinitions"], default=str)
    assert SECRET_KEY not in definitions and ACCESS_KEY not in definitions
    jobs = batch.describe_jobs(jobs=batch_job_ids(root))["jobs"]
    assert len(jobs) == 2
    described = json.dumps(jobs, default=str)
    assert SECRET_KEY not in described
    for job in jobs:  # the key id only inside the presigned URLs the job's command carries
        for word in job["container"]["command"]:
            if ACCESS_KEY in word:
                assert word.startswith("http://127.0.0.1:") and "X-Amz-Credential=" in word
        assert ACCESS_KEY not in json.dumps({k: v for k, v in job.items() if k != "container"}, default=str)
    # what the containers printed (the step ran `env`): no AWS credential was in their environment
    streams = logs_client.describe_log_streams(logGroupName="/aws/batch/job")["logStreams"]
    events = [e["message"] for s in streams for e in logs_client.get_log_events(
        logGroupName="/aws/batch/job", logStreamName=s["logStreamName"])["events"]]
    assert any("REPROPACK_RUN_ID" in e for e in events)
    assert not [e for e in events if SECRET_KEY in e or ACCESS_KEY in e or "AWS_SECRET" in e]
