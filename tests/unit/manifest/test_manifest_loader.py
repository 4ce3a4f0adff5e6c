"""load_manifest on valid manifests: the typed, immutable model; and the file-level refusals."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import textwrap
from pathlib import Path

import pytest

from repropack.errors import ManifestError, ManifestErrors
from repropack.manifest import find_manifest, load_manifest
from repropack.manifest.model import Quantity, thaw

REPO = Path(__file__).resolve().parents[3]

FULL = """
requires-repropack = ">=0.1"
[project]
name = "full"
version = "1.0"
description = "every section"
authors = ["Ada", { name = "Grace", email = "g@example.org" }]
license = "MIT"

[environments.default]
python = "3.11"
channels = ["conda-forge", "file:///srv/channel"]
conda = ["numpy >=1.26", "conda-forge::scipy"]
pip = ["pandas ==2.2.*", "requests[socks] >=2 ; python_version >= '3.8'"]
indexes = ["https://pypi.org/simple"]
platforms = ["linux-64", "osx-arm64"]

[environments.gpu]
conda = ["pytorch"]

[channels.mirrors]
conda-forge = "file:///srv/mirror/conda-forge"

[image]
base = "python:3.11-slim"
name = "example/full"
workdir = "/srv"
user = "1000"

[data.reads]
url = "https://example.org/reads.fq.gz"
sha256 = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

[params]
min_quality = 20
mode = { default = "fast", description = "how hard to try" }

[[steps]]
name = "count"
run = "python scripts/count.py {sample} --min-q {params.min_quality} {inputs} > {outputs}"
foreach = { sample = ["a", "b", "c"] }
inputs = ["data/{sample}.txt"]
outputs = ["results/{sample}.count"]
sources = ["scripts/count.py"]
resources = { cpus = 2, memory = "2GB * attempt", time = "1h30m", gpus = 0 }
retries = 2
profile = "hpc"

[[steps]]
name = "summary"
environment = "gpu"
run = "python scripts/summary.py {inputs} > {outputs}"
inputs = ["results/{sample}.count"]
outputs = ["results/summary.tsv"]
expect = { "results/summary.tsv" = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" }
needs = ["count"]

[profiles.local]
cpus = 2
memory = "4G"

[profiles.hpc]
backend = "slurm"
runtime = "apptainer"
apptainer-flags = ["--userns"]
partition = "short"
account = "lab"
qos = "normal"
sbatch-args = ["--exclusive"]
max-jobs = 50
env = ["HTTPS_PROXY"]

[profiles.cloud]
backend = "aws-batch"
queue = "spot"
job-definition = "repropack"
region = "eu-west-1"
endpoint = "http://127.0.0.1:5000"
bucket = "s3://repropack-bucket/runs"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "repropack.toml").write_text(textwrap.dedent(text))
    return tmp_path


def test_every_section(tmp_path):
    m = load_manifest(write(tmp_path, FULL))
    assert m.path == tmp_path / "repropack.toml" and m.root == tmp_path
    assert m.project.authors == ("Ada", "Grace <g@example.org>")
    assert m.environments["default"].platforms == ("linux-64", "osx-arm64")
    assert m.environments["gpu"].indexes == ("https://pypi.org/simple",)  # the default
    assert m.mirrors == {"conda-forge": "file:///srv/mirror/conda-forge"}
    assert m.image.workdir == "/srv"
    assert m.data["reads"].path == "data/reads.fq.gz" and m.data["reads"].sha256 == "a" * 64
    assert m.params == {"min_quality": 20, "mode": "fast"}
    count = m.step("count")
    assert count.environment == "default" and count.line == 38 and count.key == ("steps", 0)
    assert count.foreach.keys == ("sample",) and count.foreach.values("sample") == ("a", "b", "c")
    assert count.resources.memory == Quantity(2 * 10**9, per_attempt=True)
    assert count.resources.time == Quantity(5400) and count.resources.cpus == 2
    assert count.retries == 2 and count.profile == "hpc"
    summary = m.step("summary")
    assert summary.environment == "gpu" and summary.needs == ("count",)
    assert summary.expect == {"results/summary.tsv": "sha256:" + "b" * 64}
    assert m.profiles["local"].memory == 4 * 2**30
    hpc = m.profiles["hpc"]
    assert (hpc.backend, hpc.runtime, hpc.max_jobs, hpc.env) == ("slurm", "apptainer", 50, ("HTTPS_PROXY",))
    assert hpc.options == {"partition": "short", "account": "lab", "qos": "normal", "sbatch-args": ("--exclusive",)}
    assert m.profiles["cloud"].runtime == "docker" and m.profiles["cloud"].options["region"] == "eu-west-1"
    assert m.profile(None).cpus == 2


def test_model_is_immutable(tmp_path):
    m = load_manifest(write(tmp_path, FULL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.project = None  # type: ignore[misc]
    for mapping in (m.params, m.environments, m.profiles, m.raw, m.raw["project"]):
        with pytest.raises(TypeError):
            mapping["x"] = 1  # type: ignore[index]
    assert isinstance(m.raw["environments"]["default"]["pip"], tuple)
    assert json.loads(json.dumps(thaw(m.raw)))["project"]["name"] == "full"


def test_environment_defaults(tmp_path):
    m = load_manifest(write(tmp_path, """
        [project]
        name = "host"
        [[steps]]
        name = "s"
        run = "true"
    """))
    assert m.step("s").environment is None  # no environments: the host's tools
    with pytest.raises(ManifestErrors, match="no \\[environments.default\\]"):
        load_manifest(write(tmp_path, """
            [project]
            name = "x"
            [environments.other]
            python = "3.11"
            [[steps]]
            name = "s"
            run = "true"
        """))


def test_all_problems_are_collected(tmp_path):
    write(tmp_path, """
        [project]
        name = "x"
        colour = 1
        [[steps]]
        name = "a"
        run = "echo {nope} > {outputs}"
        outputs = ["/abs"]
        retries = -1
    """)
    with pytest.raises(ManifestErrors) as info:
        load_manifest(tmp_path)
    keys = [(e.key, e.line) for e in info.value.errors]
    assert keys == [("project.colour", 4), ("steps[0].run", 7), ("steps[0].outputs[0]", 8), ("steps[0].retries", 9)]
    assert "and 3 more problem(s)" in str(info.value)


def test_find_manifest(tmp_path):
    write(tmp_path, '[project]\nname = "x"\n')
    assert find_manifest(tmp_path) == tmp_path / "repropack.toml"
    assert find_manifest(tmp_path / "repropack.toml") == tmp_path / "repropack.toml"
    with pytest.raises(ManifestError, match="no repropack.toml in"):
        find_manifest(tmp_path / "..")
    with pytest.raises(ManifestError, match="no such folder"):
        find_manifest(tmp_path / "missing")


def test_ten_megabyte_manifest_refused_before_reading(tmp_path):
    path = tmp_path / "repropack.toml"
    with path.open("wb") as handle:
        handle.truncate(10 * 2**20)  # sparse: the test itself stays small
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ManifestError, match="10.0 MiB; the limit is 4 MiB"):
        load_manifest(tmp_path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 8 * 1024  # KiB: never read it whole
    assert os.listdir(tmp_path) == ["repropack.toml"]


def test_bom_is_accepted(tmp_path):
    (tmp_path / "repropack.toml").write_bytes(b'\xef\xbb\xbf[project]\nname = "x"\n')
    assert load_manifest(tmp_path).project.name == "x"


def test_not_toml_reports_the_parser_position_at_end(tmp_path):
    (tmp_path / "repropack.toml").write_text('[project]\nname = "x"\nlist = [1,\n')
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert info.value.line == 4 and "not valid TOML" in str(info.value)


def test_ten_thousand_value_foreach_loads(tmp_path):
    values = ", ".join(f'"s{i}"' for i in range(10_000))
    write(tmp_path, f"""
        [project]
        name = "big"
        [[steps]]
        name = "count"
        run = "wc -c {{inputs}} > {{outputs}}"
        foreach = {{ sample = [{values}, "bad/value"] }}
        inputs = ["data/{{sample}}.txt"]
        outputs = ["results/{{sample}}.count"]
    """)
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert info.value.key == "steps[0].foreach.sample[10000]" and info.value.line == 7
