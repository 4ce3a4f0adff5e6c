"""The Provenance Run Crate of hand-made runs: roc-validator (provenance-run-crate-0.5, REQUIRED,
offline) accepts it, and it has one action per instance, the digests of SHA256SUMS, the params,
the environments and no secret."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _provsample import sample_run
from _rocvalidate import validate_crate
from repropack.provenance import CRATE_NAME, write_facts
from repropack.provenance.crate import build_crate


def _graph(data: dict) -> dict[str, dict]:
    return {e["@id"]: e for e in data["@graph"]}


def _types(entity: dict) -> list[str]:
    t = entity["@type"]
    return t if isinstance(t, list) else [t]


def _by_type(data: dict, name: str) -> list[dict]:
    return [e for e in data["@graph"] if name in _types(e)]


@pytest.mark.parametrize("kind", ["failed", "ok", "cached", "interrupted"])
def test_crate_passes_the_validator(tmp_path, kind):
    facts = sample_run(tmp_path, kind=kind)
    written = write_facts(facts, tmp_path / ".repropack" / "runs" / "R1" / "provenance")
    # The crate's root is the project: validate it there, where its data entities are.
    (tmp_path / CRATE_NAME).write_bytes(written.crate.read_bytes())
    passed, issues = validate_crate(tmp_path)
    assert passed, "\n".join(issues)


def test_validator_rejects_a_crate_without_step_actions(tmp_path):
    # The offline helper must leave the checks in force: a crate missing what the profile requires fails.
    data = build_crate(sample_run(tmp_path, kind="ok"))
    data["@graph"] = [e for e in data["@graph"] if "OrganizeAction" not in _types(e)]
    for e in data["@graph"]:
        if "HowToStep" in _types(e):
            e.pop("workExample")
    (tmp_path / CRATE_NAME).write_text(json.dumps(data))
    passed, issues = validate_crate(tmp_path)
    assert not passed and any("workExample" in i or "HowToStep" in i for i in issues), issues


def test_one_action_per_instance_and_digests_equal_sha256sums(tmp_path):
    facts = sample_run(tmp_path, kind="failed")
    data = build_crate(facts)
    graph = _graph(data)
    actions = [e for e in _by_type(data, "CreateAction") if e["instrument"]["@id"].startswith("#tool-")]
    assert len(actions) == len(facts.instances) == 3
    status = {a["name"]: a["actionStatus"] for a in actions}
    assert status == {"count[sample=alpha]": "CompletedActionStatus", "count[sample=beta]": "FailedActionStatus",
                      "summary": "PotentialActionStatus"}
    beta = next(a for a in actions if a["name"] == "count[sample=beta]")
    assert "exit status 3" in beta["error"] and "result" not in beta
    usage = {graph[u["@id"]]["propertyID"]: graph[u["@id"]]["value"] for u in beta["resourceUsage"]}
    assert usage["exitStatus"] == "3" and usage["peakMemory"] == "9000000" and usage["backend"] == "local/host"
    results = [graph[r["@id"]] for a in actions for r in a.get("result", [])]
    assert results and {r["@id"]: r["sha256"] for r in results} == facts.sums
    for r in results:
        assert int(r["contentSize"]) == (tmp_path / r["@id"]).stat().st_size
    run = next(a for a in _by_type(data, "CreateAction") if a["instrument"]["@id"] == "repropack.toml")
    assert run["actionStatus"] == "FailedActionStatus" and "1 failed" in run["error"]
    assert len(graph[f"#organize-R1"]["object"]) == 3


def test_cached_instances_point_at_the_run_that_made_them(tmp_path):
    facts = sample_run(tmp_path, kind="cached")
    data = build_crate(facts)
    graph = _graph(data)
    actions = [e for e in _by_type(data, "CreateAction") if e["instrument"]["@id"].startswith("#tool-")]
    assert len(actions) == 3
    for action in actions:
        assert action["actionStatus"] == "CompletedActionStatus"
        assert graph[action["subjectOf"]["@id"]]["identifier"] == "R0"
        for r in action["result"]:
            assert graph[r["@id"]]["sha256"] == facts.sums[r["@id"]]


def test_interrupted_run_says_so(tmp_path):
    data = build_crate(sample_run(tmp_path, kind="interrupted"))
    graph = _graph(data)
    beta = graph["#instance-count%5Bsample%3Dbeta%5D"]
    assert beta["actionStatus"] == "FailedActionStatus" and beta["error"].startswith("interrupted")
    assert graph["#run-R1"]["actionStatus"] == "FailedActionStatus"
    assert graph["#run-R1"]["error"].startswith("run ended interrupted")


def test_environments_params_agent_and_version(tmp_path):
    facts = sample_run(tmp_path, kind="ok")
    graph = _graph(build_crate(facts, {"default": ".repropack/runs/R1/provenance/sbom/default.cdx.json"}))
    env = graph["#environment-default"]
    assert env["identifier"] == facts.environments["default"].lock_sha256
    lock = graph["locks/default/pylock.linux-64.toml"]
    assert lock["sha256"] == facts.environments["default"].lock_files[0].sha256
    assert graph["#image-docker-default"]["sha256"] == "cd" * 32
    assert graph["#image-sif-default"]["sha256"] == "12" * 32
    assert graph["#image-base"]["identifier"] == "sha256:" + "34" * 32
    assert graph[".repropack/runs/R1/provenance/sbom/default.cdx.json"]["about"]["@id"] == "#environment-default"
    assert graph["#pv-min_length"]["value"] == "3"
    assert graph["#param-min_length"]["additionalType"] == "Integer"
    assert graph["#repropack"]["softwareVersion"] == "0.1.0"
    assert graph["#agent"]["name"] == "ada"


def test_no_secret_reaches_the_crate(tmp_path):
    text = json.dumps(build_crate(sample_run(tmp_path, kind="failed")))
    assert "s3cr3t-value-123" not in text and "abcdef123456" not in text
    assert "--token ***" in text


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1,
               max_size=20))
def test_any_instance_name_gives_one_distinct_action(tmp_path_factory, value):
    root = tmp_path_factory.mktemp("p")
    facts = sample_run(root, kind="ok")
    facts.instances[0].id = f"count[sample={value}]"
    data = build_crate(facts)
    ids = [e["@id"] for e in data["@graph"]]
    assert len(ids) == len(set(ids))
    actions = [e for e in _by_type(data, "CreateAction") if e["instrument"]["@id"].startswith("#tool-")]
    assert sorted(a["name"] for a in actions) == sorted(i.id for i in facts.instances)
    assert all(" " not in i and "[" not in i for i in ids if i.startswith("#"))


def test_ro_crate_py_reads_the_crate_back(tmp_path):
    from rocrate.rocrate import ROCrate

    facts = sample_run(tmp_path, kind="failed")
    written = write_facts(facts, tmp_path / "prov")
    (tmp_path / CRATE_NAME).write_bytes(written.crate.read_bytes())
    crate = ROCrate(tmp_path)
    assert crate.metadata.version == "1.1"
    assert crate.mainEntity.id == "repropack.toml"
    for inst in facts.instances:
        action = crate.get("#instance-" + quote(inst.id, safe=""))
        assert action is not None and action["name"] == inst.id
    assert crate.get("results/alpha.count")["sha256"] == facts.sums["results/alpha.count"]
