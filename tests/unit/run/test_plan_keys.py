"""The planner's key decisions (issue 8, defects 4 and 12): what each instance's key is made of,
and records of an older key scheme rerun once with a reason instead of crashing."""

from __future__ import annotations

import textwrap

import pytest

from repropack.manifest import load_manifest
from repropack.manifest.dag import expand
from repropack.run.environments import Environments
from repropack.run.journal import JournalState
from repropack.run.keys import KEY_SCHEME, FileHashCache
from repropack.run.plan import Planner

MANIFEST = """\
[project]
name = "plan"
[params]
n = 3
[[steps]]
name = "make"
run = "echo {s} {params.n} > {outputs}"
foreach = { s = ["a", "b"] }
outputs = ["out/{s}.txt"]
resources = { cpus = 2 }
[[steps]]
name = "gather"
run = "xargs cat < {inputs:list} > {outputs}"
inputs = ["out/{s}.txt"]
outputs = ["all.txt"]
"""


def _planner(tmp_path, done=None, keyed=None, manifest=MANIFEST, params=None):
    (tmp_path / "repropack.toml").write_text(textwrap.dedent(manifest))
    (tmp_path / "out").mkdir(exist_ok=True)
    for name in ("a", "b"):
        (tmp_path / "out" / f"{name}.txt").write_text(name)
    (tmp_path / "all.txt").write_text("ab")
    m = load_manifest(tmp_path)
    dag = expand(m, params or {})
    return dag, Planner(dag, JournalState(done=done or {}), FileHashCache(tmp_path), Environments(m), keyed_env=keyed)


def test_defect04_parts_carry_order_outputs_cpus_and_env(tmp_path):
    dag, planner = _planner(tmp_path, keyed=lambda inst: {"FOO": "hmac-sha256:1"} if inst.step.name == "make" else {})
    make, _ = planner.parts(dag.instances["make[s=a]"])
    gather, _ = planner.parts(dag.instances["gather"])
    assert make.cpus == 2 and gather.cpus == 1
    assert make.env == {"FOO": "hmac-sha256:1"} and gather.env == {}
    record = gather.to_record()
    assert {"order", "outputs", "cpus", "env"} <= set(record)
    assert "FOO" not in str(gather.to_record())


def test_defect04_old_scheme_records_rerun_once_with_a_reason(tmp_path):
    dag, planner = _planner(tmp_path)
    parts, _ = planner.parts(dag.instances["gather"])
    old = {"key": "k1:" + "0" * 64, "parts": {"command": parts.command, "inputs": parts.inputs}, "outputs": {}}
    _, planner = _planner(tmp_path, done={"gather": old, "make[s=a]": {"key": None, "parts": "junk"},
                                          "make[s=b]": {"key": parts.key, "parts": ["junk"], "outputs": {}}})
    assert planner.decide(dag.instances["gather"]).reasons == [f"cache key scheme changed (k1 -> k{KEY_SCHEME})"]
    assert planner.decide(dag.instances["make[s=a]"]).reasons == [f"cache key scheme changed (none -> k{KEY_SCHEME})"]
    assert planner.decide(dag.instances["make[s=b]"]).reasons == ["changed key (its recorded parts are unreadable)"]
    current = {"key": f"k{KEY_SCHEME}:" + "1" * 64, "parts": parts.to_record(), "outputs": {}}  # parts agree, key does not
    _, planner = _planner(tmp_path, done={"gather": current})
    assert planner.decide(dag.instances["gather"]).reasons == ["changed key"]


@pytest.mark.parametrize("edit, reason", [
    (lambda t: t.replace('["a", "b"]', '["b", "a"]'), "changed input order"),
    (lambda t: t.replace("cpus = 2", "cpus = 1"), "changed cpus"),
])
def test_defect04_each_edit_changes_the_key(tmp_path, edit, reason):
    dag, planner = _planner(tmp_path)
    iid = "gather" if "order" in reason else "make[s=a]"
    before, _ = planner.parts(dag.instances[iid])
    done = {iid: {"key": before.key, "parts": before.to_record(), "outputs": {}}}
    dag2, planner2 = _planner(tmp_path, done=done, manifest=edit(MANIFEST))
    assert reason in planner2.decide(dag2.instances[iid]).reasons


def test_params_change_the_key(tmp_path):
    dag, planner = _planner(tmp_path)
    before, _ = planner.parts(dag.instances["make[s=a]"])
    dag2, planner2 = _planner(tmp_path, params={"n": "4"})
    after, _ = planner2.parts(dag2.instances["make[s=a]"])
    assert before.key != after.key and before.params != after.params
