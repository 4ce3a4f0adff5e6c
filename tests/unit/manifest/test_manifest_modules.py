"""Modules: `use` + `with`, namespaced steps, outputs, parameters and environments."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from repropack.errors import ManifestError
from repropack.manifest import load_manifest
from repropack.manifest.dag import expand

MODULE = """
[module]
name = "align"
description = "map reads to a reference"

[params]
reads = { description = "the reads (a project path)" }
threads = 2

[environments.default]
python = "3.11"
pip = ["pysam ==0.22.*"]

[[steps]]
name = "index"
run = "python {module}/scripts/index.py {inputs} > {outputs}"
inputs = ["ref/genome.fa"]
outputs = ["{prefix}/genome.idx"]

[[steps]]
name = "map"
run = "python {module}/scripts/map.py -t {params.threads} {inputs.index} {inputs.reads} > {outputs}"
inputs = { index = "{prefix}/genome.idx", reads = "{params.reads}" }
outputs = ["{prefix}/aligned.sam"]
resources = { cpus = 2 }
"""

MANIFEST = """
[project]
name = "two-uses"

[environments.default]
python = "3.11"

[[steps]]
name = "fetch"
run = "touch {outputs}"
outputs = ["data/a.fq", "data/b.fq"]

[[steps]]
name = "align_a"
use = "modules/align"
with = { reads = "data/a.fq", threads = 8 }
prefix = "results/a"

[[steps]]
name = "align_b"
use = "modules/align"
with = { reads = "data/b.fq" }

[[steps]]
name = "report"
run = "cat {inputs} > {outputs}"
inputs = ["results/a/aligned.sam", "align_b/aligned.sam"]
outputs = ["report.txt"]
needs = ["align_a"]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "repropack.toml").write_text(MANIFEST)
    module = tmp_path / "modules" / "align"
    (module / "scripts").mkdir(parents=True)
    (module / "module.toml").write_text(MODULE)
    (module / "scripts" / "index.py").write_text("")
    (module / "scripts" / "map.py").write_text("")
    return tmp_path


def test_module_used_twice_is_namespaced(root):
    manifest = load_manifest(root)
    names = [s.name for s in manifest.steps]
    assert names == ["fetch", "align_a.index", "align_a.map", "align_b.index", "align_b.map", "report"]
    step = manifest.step("align_a.map")
    assert step.module == "align_a" and step.use == "modules/align" and step.with_["threads"] == 8
    assert step.origin == root / "modules" / "align" / "module.toml"
    assert step.environment == "align.default"
    assert manifest.environments["align.default"].pip == ("pysam ==0.22.*",)
    assert manifest.params["align_a.threads"] == 8 and manifest.params["align_b.threads"] == 2
    assert manifest.params["align_b.reads"] == "data/b.fq"


def test_module_instances(root):
    dag = expand(load_manifest(root))
    a, b = dag.instances["align_a.map"], dag.instances["align_b.map"]
    assert a.outputs == ("results/a/aligned.sam",) and b.outputs == ("align_b/aligned.sam",)
    assert a.inputs == ("results/a/genome.idx", "data/a.fq")
    assert a.deps == ("align_a.index", "fetch")
    assert a.command() == "python modules/align/scripts/map.py -t 8 results/a/genome.idx data/a.fq > results/a/aligned.sam"
    assert b.command().startswith("python modules/align/scripts/map.py -t 2 ")
    assert a.sources == ("modules/align/scripts/map.py",)
    assert dict(a.params) == {"align_a.threads": 8, "align_a.reads": "data/a.fq"}
    report = dag.instances["report"]
    assert set(report.deps) == {"align_a.map", "align_b.map", "align_a.index"}
    assert set(dag.select(["align_b"]).instances) == {"fetch", "align_b.index", "align_b.map"}


def test_module_parameter_overridden_from_the_command_line(root):
    dag = expand(load_manifest(root), {"align_b.threads": "16"})
    assert " -t 16 " in dag.instances["align_b.map"].command()
    assert " -t 8 " in dag.instances["align_a.map"].command()


def test_module_as_a_single_file(tmp_path):
    (tmp_path / "repropack.toml").write_text(textwrap.dedent("""
        [project]
        name = "one"
        [[steps]]
        name = "greet"
        use = "modules/greet.toml"
        with = { who = "world" }
    """))
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "greet.toml").write_text(textwrap.dedent("""
        [params]
        who = "nobody"
        [[steps]]
        name = "say"
        run = "echo hello {params.who} > {outputs}"
        outputs = ["{prefix}/hello.txt"]
    """))
    manifest = load_manifest(tmp_path)
    inst = expand(manifest).instances["greet.say"]
    assert inst.command() == "echo hello world > greet/hello.txt"
    assert manifest.step("greet.say").environment is None


def test_module_required_parameter(root):
    text = (root / "repropack.toml").read_text().replace('with = { reads = "data/b.fq" }', "")
    (root / "repropack.toml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(root)
    assert "steps[2]" in str(info.value) and "'reads' has no default" in str(info.value)


def test_module_outside_the_project_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "repropack.toml").write_text('[project]\nname = "p"\n[[steps]]\nname = "x"\nuse = "../m.toml"\n')
    with pytest.raises(ManifestError, match=r"repropack.toml:5:1: steps\[0\].use: '../m.toml' escapes"):
        load_manifest(tmp_path / "p")


def test_project_without_environments_keeps_the_host_for_its_own_steps(root):
    """A module's environment is the module's: the project's own steps still run with the host's tools."""
    text = (root / "repropack.toml").read_text().replace('[environments.default]\npython = "3.11"\n', "")
    (root / "repropack.toml").write_text(text)
    manifest = load_manifest(root)
    assert list(manifest.environments) == ["align.default"]
    assert manifest.step("report").environment is None and manifest.step("fetch").environment is None
    assert manifest.step("align_a.map").environment == "align.default"


def test_project_with_only_other_environments_still_needs_a_default(root):
    text = (root / "repropack.toml").read_text().replace("[environments.default]", "[environments.tools]")
    (root / "repropack.toml").write_text(text)
    with pytest.raises(ManifestError, match=r"step 'fetch' names no environment .*environment = \"tools\""):
        load_manifest(root)


@pytest.mark.parametrize("given, found", [('"eight"', "a string ('eight')"), ("true", "a boolean (True)"),
                                          ("2.5", "a number (2.5)")])
def test_with_value_must_have_the_type_of_the_modules_default(root, given, found):
    text = (root / "repropack.toml").read_text().replace("threads = 8 }", f"threads = {given} }}")
    (root / "repropack.toml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(root)
    message = str(info.value)
    assert "steps[1].with.threads" in message and "'threads' is an integer (default 2)" in message, message
    assert f"found {found}" in message and "more problem" not in message, message


def test_with_value_of_a_required_parameter_may_be_any_scalar_and_ints_fill_floats(root):
    module = root / "modules" / "align" / "module.toml"
    module.write_text(module.read_text().replace("threads = 2", "threads = 2.0"))
    text = (root / "repropack.toml").read_text().replace('reads = "data/b.fq"', "reads = 7")
    (root / "repropack.toml").write_text(text)
    manifest = load_manifest(root)
    assert manifest.params["align_a.threads"] == 8 and manifest.params["align_b.threads"] == 2.0
    assert manifest.params["align_b.reads"] == 7  # no default to type it by


def test_two_uses_with_one_prefix_are_one_error_at_the_prefix(root):
    text = (root / "repropack.toml").read_text().replace('with = { reads = "data/b.fq" }',
                                                         'with = { reads = "data/b.fq" }\nprefix = "results/a/"')
    (root / "repropack.toml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(root)
    message = str(info.value)
    assert "steps[2].prefix: use 'align_b' writes under 'results/a' like use 'align_a'" in message, message
    assert "more problem" not in message  # not also every output written twice, nor the report's `needs`


@pytest.mark.parametrize("prefix", [".", "./", ""])
def test_prefix_must_be_a_folder_inside_the_project(root, prefix):
    text = (root / "repropack.toml").read_text().replace('prefix = "results/a"', f'prefix = "{prefix}"')
    (root / "repropack.toml").write_text(text)
    with pytest.raises(ManifestError, match=r"steps\[1\]\.prefix: .* must be a plain folder inside the project"):
        load_manifest(root)


def test_prefix_spelling_is_normalised(root):
    text = (root / "repropack.toml").read_text().replace('prefix = "results/a"', 'prefix = "./results//a/"')
    (root / "repropack.toml").write_text(text)
    assert expand(load_manifest(root)).instances["align_a.map"].outputs == ("results/a/aligned.sam",)


def test_an_error_found_across_instances_names_the_module_step(root):
    text = (root / "repropack.toml").read_text().replace('outputs = ["data/a.fq", "data/b.fq"]',
                                                         'outputs = ["data/a.fq", "data/b.fq", "align_b/genome.idx"]')
    (root / "repropack.toml").write_text(text)
    with pytest.raises(ManifestError) as info:
        load_manifest(root)
    message = str(info.value)
    assert "module.toml:" in message and "steps[0].outputs[0]" in message
    assert "'align_b/genome.idx' is also written by step 'fetch'; each file has one producer (in step 'align_b.index')" \
        in message, message


def test_a_file_written_twice_is_one_problem_per_output_entry_not_per_instance(tmp_path):
    (tmp_path / "repropack.toml").write_text(textwrap.dedent("""
        [project]
        name = "twice"
        [[steps]]
        name = "a"
        run = "touch {outputs}"
        foreach = { s = ["1", "2", "3"] }
        outputs = ["out/{s}.txt"]
        [[steps]]
        name = "b"
        run = "touch {outputs}"
        foreach = { s = ["1", "2", "3"] }
        outputs = ["out/{s}.txt"]
    """))
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert str(info.value).endswith("steps[1].outputs[0]: 'out/1.txt' is also written by step 'a'; each file has one producer")
