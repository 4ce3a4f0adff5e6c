"""Every run of examples/* (host profile) writes a crate that roc-validator accepts at
provenance-run-crate-0.5 REQUIRED (offline), with one action per planned instance and the digests
of the run's checksums, and SBOMs that pass CycloneDX's strict validator; a second, fully cached
run too; a failing run and `repropack provenance -o DIR` as well."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from runhelp import last_run_id, repropack, write_project

from _rocvalidate import validate_crate
from repropack.provenance import CRATE_NAME
from repropack.provenance.sbom import validate_sbom
from repropack.run.records.reader import open_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LEFT_BY_RUNS = {"results", ".repropack", "locks", "repropack.lock", "__pycache__"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifact-cache")


@pytest.fixture
def env(cache, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("REPROPACK_CACHE", str(cache))
    monkeypatch.setenv("REPROPACK_BASE_OVERRIDE", "local/debian:bookworm-python")
    return dict(os.environ)


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target, ignore=lambda d, names: LEFT_BY_RUNS & set(names))
    return target


def check_run(root: Path, run_id: str, crate_dir: Path | None = None) -> dict:
    """The crate of ``run_id`` against the validator and against the run's own records."""
    crate_dir = crate_dir or root / ".repropack" / "runs" / run_id / "provenance"
    data = json.loads((crate_dir / CRATE_NAME).read_text())
    shutil.copy(crate_dir / CRATE_NAME, root / CRATE_NAME)  # the crate's root is the project
    try:
        passed, issues = validate_crate(root)
    finally:
        (root / CRATE_NAME).unlink()
    assert passed, "\n".join(issues)
    view = open_run(root, run_id)
    graph = {e["@id"]: e for e in data["@graph"]}
    actions = [e for e in data["@graph"] if e["@type"] == "CreateAction" and e["instrument"]["@id"].startswith("#tool-")]
    assert sorted(a["name"] for a in actions) == sorted(view.instances)
    sums = {p: d.removeprefix("sha256:") for p, d in view.checksums().items()}
    results = {r["@id"]: graph[r["@id"]] for a in actions for r in a.get("result", [])}
    # a file by its sha256; a folder output (a Dataset, "tree:" digest in the sums) by its identifier
    assert {p.rstrip("/"): e.get("sha256") or e["identifier"] for p, e in results.items()} == sums
    for path, entity in results.items():
        if "File" in entity["@type"] and (view.format >= 2 or "contentSize" in entity):  # format 1 recorded no sizes
            assert int(entity["contentSize"]) == (root / path).stat().st_size
    for env_name, env in view.info.environments.items():
        if not env.get("lock_sha256"):
            assert not (crate_dir / "sbom" / f"{env_name}.cdx.json").exists()  # the host's tools: not locked
            continue
        sbom = crate_dir / "sbom" / f"{env_name}.cdx.json"
        assert validate_sbom(sbom.read_text()) is None
        assert json.loads(sbom.read_text())["components"], f"{sbom} lists no package"
    return data


@pytest.mark.network
@pytest.mark.parametrize("name", ["quickstart", "modules", "conda-local"])
def test_every_example_run_writes_a_valid_crate(tmp_path, env, name):
    root = _copy(name, tmp_path)
    repropack(root, "lock", check=True, env=env)
    repropack(root, "run", check=True, env=env)
    check_run(root, last_run_id(root))
    repropack(root, "run", check=True, env=env)  # everything cached
    second = last_run_id(root)
    if open_run(root, second).format < 2:  # format 1 recorded only what ran: nothing to describe here
        assert (root / ".repropack" / "runs" / second / "provenance" / CRATE_NAME).is_file()
        return
    data = check_run(root, second)
    run = next(e for e in data["@graph"] if e["@id"] == f"#run-{second}")
    assert run["actionStatus"] == "CompletedActionStatus"


def test_a_failing_run_and_repropack_provenance(tmp_path):
    root = write_project(tmp_path / "p", """
[project]
name = "failing"
[[steps]]
name = "make"
run = "echo {sample} > {outputs}"
foreach = { sample = ["a", "b"] }
outputs = ["out/{sample}.txt"]
[[steps]]
name = "broken"
run = "cat {inputs} > {outputs}; exit 3"
inputs = ["out/{sample}.txt"]
outputs = ["out/all.txt"]
""")
    result = repropack(root, "run", "--keep-going")
    assert result.returncode == 1
    run_id = last_run_id(root)
    data = check_run(root, run_id)
    statuses = {e["name"]: e["actionStatus"] for e in data["@graph"] if e["@type"] == "CreateAction"
                and e["instrument"]["@id"].startswith("#tool-")}
    assert statuses == {"make[sample=a]": "CompletedActionStatus", "make[sample=b]": "CompletedActionStatus",
                        "broken": "FailedActionStatus"}
    out = tmp_path / "elsewhere"
    listed = repropack(root, "provenance", run_id, "-o", str(out), "--json", check=True)
    assert json.loads(listed.stdout)["actions"] == 3
    assert json.loads((out / CRATE_NAME).read_text())["@graph"]
    missing = repropack(root, "provenance", "no-such-run")
    assert missing.returncode == 2 and "no run 'no-such-run'" in missing.stderr


def test_an_interrupted_run_says_so(tmp_path):
    import signal
    import time

    from runhelp import start

    root = write_project(tmp_path / "p", """
[project]
name = "stopped"
[[steps]]
name = "quick"
run = "echo {n} > {outputs}"
foreach = { n = ["1", "2"] }
outputs = ["out/{n}.txt"]
[[steps]]
name = "slow"
run = "sleep 60; echo > {outputs}"
outputs = ["out/slow.txt"]
""")
    runner = start(root, "run", "-j", "3")
    deadline = time.monotonic() + 60
    while not ((root / "out/1.txt").exists() and (root / "out/2.txt").exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the quick ones' records written
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=60)
    assert runner.returncode == 130
    run_id = last_run_id(root)
    data = json.loads((root / ".repropack" / "runs" / run_id / "provenance" / CRATE_NAME).read_text())
    graph = {e["@id"]: e for e in data["@graph"]}
    run = graph[f"#run-{run_id}"]
    assert run["actionStatus"] == "FailedActionStatus" and run["error"].startswith("run ended interrupted")
    actions = {e["name"]: e for e in data["@graph"] if e["@type"] == "CreateAction" and e["instrument"]["@id"] != "repropack.toml"}
    assert actions["quick[n=1]"]["actionStatus"] == actions["quick[n=2]"]["actionStatus"] == "CompletedActionStatus"
    assert actions.get("slow", {}).get("actionStatus") != "CompletedActionStatus"


@pytest.mark.network
@pytest.mark.docker
def test_a_docker_run_names_its_image(tmp_path, env):
    root = _copy("quickstart", tmp_path)
    repropack(root, "lock", check=True, env=env)
    repropack(root, "build", "--docker", check=True, env=env, timeout=600)
    repropack(root, "run", "--profile", "docker", check=True, env=env)
    run_id = last_run_id(root)
    data = check_run(root, run_id)
    image_id = open_run(root, run_id).info.environments["default"]["image_id"]
    graph = {e["@id"]: e for e in data["@graph"]}
    image = graph["#image-docker-default"]
    assert image_id and image["sha256"] == image_id.removeprefix("sha256:")
    actions = [e for e in data["@graph"] if e["@type"] == "CreateAction" and e["instrument"]["@id"].startswith("#tool-")]
    assert all(a["containerImage"]["@id"] == "#image-docker-default" for a in actions)
    sbom = json.loads((root / ".repropack" / "runs" / run_id / "provenance" / "sbom" / "default.cdx.json").read_text())
    assert any(c["type"] == "container" and c["hashes"][0]["content"] == image["sha256"] for c in sbom["components"])
