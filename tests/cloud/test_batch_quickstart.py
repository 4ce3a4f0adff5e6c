"""The issue's bar: examples/quickstart, built, runs with `--profile cloud` against the moto server
(jobs in Docker, image pushed to the local registry by digest) with the same output digests as on the
host, records naming backend aws-batch and job ids moto reports SUCCEEDED."""

from __future__ import annotations

import json
import shutil

import pytest
from cloudhelp import REPO, batch_job_ids, done_outputs, journal, run_cli

from _engines import LOCAL_BASE_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.network]


def test_quickstart_on_aws_batch_gives_the_local_digests(tmp_path, base_image, moto_server, aws_env):
    import docker

    root = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", root,
                    ignore=lambda d, names: {"results", ".repropack", "__pycache__"} & set(names))
    env = {**aws_env, "REPROPACK_CACHE": str(tmp_path / "cache")}
    run_cli(root, "lock", "--base-override", LOCAL_BASE_IMAGE, env=env, check=True, timeout=900)
    run_cli(root, "fetch", env=env, check=True, timeout=900)
    built = json.loads(run_cli(root, "build", "--docker", "--json", env=env, check=True, timeout=1200).stdout)
    image_id = built["image"]["id"]
    try:
        run_cli(root, "run", env=env, check=True)
        local = done_outputs(root)
        assert len(local) == 4
        done = run_cli(root, "run", "--profile", "cloud", "--no-resume", "--json", env=env, check=True)
        assert json.loads(done.stdout)["counts"]["done"] == 4
        assert done_outputs(root) == local
        starts = [r for r in journal(root) if r["t"] == "start"][-4:]
        assert {r["backend"] for r in starts} == {"aws-batch"}
        jobs = moto_server.client("batch").describe_jobs(jobs=batch_job_ids(root))["jobs"]
        assert len(jobs) == 4 and {j["status"] for j in jobs} == {"SUCCEEDED"}
        definitions = moto_server.client("batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
        images = {d["containerProperties"]["image"] for d in definitions if d["jobDefinitionName"].startswith("repropack-")}
        assert any(i.startswith("127.0.0.1:5000/") and "@sha256:" in i for i in images), images
    finally:  # only the tag this test added for the push: the image itself may be other tests' too
        client = docker.from_env()
        try:
            for tag in client.images.get(image_id).tags:
                if tag.startswith("127.0.0.1:5000/"):
                    client.images.remove(tag)
        except docker.errors.APIError:
            pass
        client.close()
