"""A moto server for the aws-batch tests: one process per test session, real HTTP on 127.0.0.1.

moto's Batch runs each job as a container in the local Docker engine; with
MOTO_DOCKER_NETWORK_MODE=host the job containers reach this server (its S3) on 127.0.0.1 too, so
no traffic leaves the machine. The fixture creates what the quickstart's `cloud` profile names
(an UNMANAGED compute environment, the job queue, the bucket) and stops the server at the end.
"""

from __future__ import annotations

import pytest
from cloudhelp import MotoServer, pushed_tags, remove_tags, start_moto


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> MotoServer:
    from _engines import require_engine

    require_engine("docker")
    before = pushed_tags()
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        server.create_queue("repropack-quickstart")
        server.create_bucket("repropack-quickstart")
        yield server
    finally:
        server.stop()
        remove_tags(pushed_tags() - before)  # the local tags the backend made to push (the registry keeps its copy)


@pytest.fixture
def aws_env(moto_server, monkeypatch) -> dict[str, str]:
    """The environment a `repropack run` against the moto server gets (boto3's standard variables)."""
    env = moto_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
