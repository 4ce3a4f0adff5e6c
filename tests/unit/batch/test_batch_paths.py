"""The aws-batch job side's path rule and the profile's bucket address, on examples and generated input."""

from __future__ import annotations

import os
import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.backends.batch import stage
from repropack.backends.batch.settings import Prices, parse_bucket
from repropack.errors import RunError

PARTS = st.text(alphabet=st.sampled_from("ab./-_ \\"), min_size=0, max_size=6)


@settings(derandomize=True, max_examples=300)
@given(st.lists(PARTS, min_size=1, max_size=5))
def test_a_task_path_is_taken_only_when_it_stays_inside_the_working_folder(parts):
    path = "/".join(parts)
    try:
        rel = stage.safe_rel(path)
    except ValueError:
        return
    joined = posixpath.normpath(posixpath.join("/work", rel))
    assert joined.startswith("/work/") and ".." not in rel.split(os.sep)


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../b", "a//b", "./a", ""])
def test_paths_that_could_leave_or_are_ambiguous_are_refused(path):
    with pytest.raises(ValueError):
        stage.safe_rel(path)


def test_bucket_addresses():
    assert parse_bucket("s3://b/some/prefix/", "p") == ("b", "some/prefix")
    assert parse_bucket("s3://b", "p") == ("b", "")
    for bad in ("b/prefix", "s3://", "https://b"):
        with pytest.raises(RunError):
            parse_bucket(bad, "cloud")


def test_array_index_prefers_aws_then_the_job_id_suffix():
    assert stage.array_index({"AWS_BATCH_JOB_ARRAY_INDEX": "4", "AWS_BATCH_JOB_ID": "x:1"}) == (4, "AWS_BATCH_JOB_ARRAY_INDEX")
    assert stage.array_index({"AWS_BATCH_JOB_ID": "abc:7"}) == (7, "AWS_BATCH_JOB_ID")
    assert stage.array_index({"REPROPACK_TASK_INDEX": "2", "AWS_BATCH_JOB_ARRAY_INDEX": "0"}) == (2, "REPROPACK_TASK_INDEX")
    assert stage.array_index({"AWS_BATCH_JOB_ID": "abc"}) == (None, None)


def test_cost_estimate_from_wall_time_and_what_was_reserved():
    prices = Prices(vcpu_hour=0.04, gb_hour=0.004)
    assert prices.estimate(wall=3600, cpus=2, memory=4 << 30) == pytest.approx(0.08 + 0.016)
    assert Prices().estimate(wall=3600, cpus=1, memory=None) is None
    assert prices.estimate(wall=None, cpus=1, memory=None) is None


def test_expired_or_refused_credentials_are_one_line_with_a_hint():
    from botocore.exceptions import ClientError, NoCredentialsError

    from repropack.backends.batch import aws

    expired = ClientError({"Error": {"Code": "ExpiredToken", "Message": "The security token included in the request "
                                     "is expired"}}, "DescribeJobQueues")
    err = aws.error("profile 'cloud': cannot reach AWS Batch", expired)
    assert err.message == ("aws-batch: profile 'cloud': cannot reach AWS Batch: ExpiredToken: The security token "
                           "included in the request is expired")
    assert "credentials" in err.hint
    missing = aws.error("cannot reach AWS Batch", NoCredentialsError())
    assert "no AWS credentials found" in str(missing) and missing.hint
    other = aws.error("x", ClientError({"Error": {"Code": "ClientException", "Message": "bad"}}, "SubmitJob"))
    assert other.hint is None
