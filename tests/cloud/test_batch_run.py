"""`repropack run` on the aws-batch backend against a moto server: jobs really run in Docker."""

from __future__ import annotations

import json

import pytest
from cloudhelp import BUCKET, batch_job_ids, cloud_profile, done_outputs, journal, run_cli, write_project

pytestmark = [pytest.mark.docker, pytest.mark.registry]

MANIFEST = """
[project]
name = "cloudy"
version = "1.0.0"

[image]
name = "{image}"

[params]
min = 2

[[steps]]
name = "count"
run = "python3 scripts/count.py {{params.min}} {{inputs}} {{outputs}}"
foreach = {{ sample = ["alpha", "beta", "gamma"] }}
inputs = ["data/{{sample}}.txt"]
outputs = ["results/{{sample}}.count"]
sources = ["scripts/count.py"]

[[steps]]
name = "summary"
run = "cat {{inputs}} | sort > {{outputs}}; echo summarised >&2"
inputs = ["results/{{sample}}.count"]
outputs = ["results/summary.tsv"]

[profiles.local]
backend = "local"
runtime = "host"
"""
COUNT = """import sys
low, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
words = [w for w in open(src).read().split() if len(w) >= low]
open(dst, "w").write(f"{src}\\t{len(words)}\\n")
print("counted", src)
"""
FILES = {"scripts/count.py": COUNT, "data/alpha.txt": "a bb ccc dddd\n", "data/beta.txt": "one two three\n",
         "data/gamma.txt": "x yy zzz yy\n"}


def project(root, image, extra=""):
    return write_project(root, MANIFEST.format(image=image) + cloud_profile(extra=extra), FILES)


def test_cloud_run_matches_local_digests_and_moto_reports_succeeded(tmp_path, base_image, moto_server, aws_env):
    root = project(tmp_path / "p", base_image)
    run_cli(root, "run", "--profile", "local", env=aws_env, check=True)
    local = done_outputs(root)
    done = run_cli(root, "run", "--profile", "cloud", "--no-resume", "--json", env=aws_env, check=True)
    assert json.loads(done.stdout)["counts"]["failed"] == 0
    assert done_outputs(root) == local and len(local) == 4
    starts = [r for r in journal(root) if r["t"] == "start"][-4:]
    assert {r["backend"] for r in starts} == {"aws-batch"}
    jobs = moto_server.client("batch").describe_jobs(jobs=batch_job_ids(root))["jobs"]
    assert len(jobs) == 4 and {j["status"] for j in jobs} == {"SUCCEEDED"}
    # the three instances of `count` went out together as one array job, each child ran its own task
    assert len({j["jobId"].split(":")[0] for j in jobs}) == 2
    run_dir = sorted((root / ".repropack" / "runs").glob("2*"))[-1]
    results = [json.loads(line) for f in (run_dir / "results").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert {r["backend"] for r in results} == {"aws-batch"} and len(results) == 4
    assert all(r["cost"]["estimate"] >= 0 and r["cost"]["currency"] == "USD" for r in results)
    assert all(r["peak_rss"] and r["cpu"] is not None for r in results)
    # the step's streams are copied back, and the container's CloudWatch log beside them
    assert b"summarised\n" in (run_dir / "streams" / "local.log").read_bytes()
    assert "summarised" in next((run_dir / "cloudwatch").glob("summary-*.attempt-1.log")).read_text()
    # nothing of the run is left in the bucket but inputs, keyed by content
    keys = [k for k in moto_server.objects(BUCKET) if k.startswith("tests/")]  # this profile's prefix
    assert keys and all(k.startswith("tests/cas/sha256/") for k in keys), sorted(keys)
    assert run_cli(root, "verify", env=aws_env).returncode == 0
    # the report shows where each step ran and what it cost (estimated from the profile's price table)
    report = json.loads(run_cli(root, "report", "--json", env=aws_env, check=True).stdout)
    assert report["cost"]["currency"] == "USD" and report["cost"]["estimate"] > 0
    assert {s["name"]: s["backends"] for s in report["steps"]} == {"count": ["aws-batch"], "summary": ["aws-batch"]}
    assert all(s["cost"] > 0 for s in report["steps"])


def test_array_children_each_get_their_index(tmp_path, base_image, moto_server, aws_env):
    root = project(tmp_path / "p", base_image)
    run_cli(root, "run", "count", "--profile", "cloud", env=aws_env, check=True)
    run_dir = sorted((root / ".repropack" / "runs").glob("2*"))[-1]
    results = [json.loads(line) for f in (run_dir / "results").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert sorted(r["instance"] for r in results) == ["count[sample=alpha]", "count[sample=beta]", "count[sample=gamma]"]
    assert {r["job_id"].split(":")[0] for r in results} == {results[0]["job_id"].split(":")[0]}
    assert sorted(int(r["job_id"].split(":")[1]) for r in results) == [0, 1, 2]
    # each child's output is its own sample's
    for sample in ("alpha", "beta", "gamma"):
        assert (root / "results" / f"{sample}.count").read_text().startswith(f"data/{sample}.txt\t")


def test_hybrid_run_one_step_local_one_on_aws_batch(tmp_path, base_image, moto_server, aws_env):
    root = project(tmp_path / "p", base_image)
    manifest = (root / "repropack.toml").read_text()
    manifest = manifest.replace('outputs = ["results/summary.tsv"]', 'outputs = ["results/summary.tsv"]\nprofile = "cloud"')
    (root / "repropack.toml").write_text(manifest)
    run_cli(root, "run", "--profile", "local", env=aws_env, check=True)
    before = done_outputs(root)
    done = run_cli(root, "run", "--profile", "local", "--no-resume", env=aws_env, check=True)
    assert done_outputs(root) == before
    starts = {r["id"]: r["backend"] for r in journal(root) if r["t"] == "start"}
    assert starts["summary"] == "aws-batch" and starts["count[sample=alpha]"] == "local"
