"""Expansion of the manifest into step instances (repropack.manifest.dag)."""

from __future__ import annotations

import dataclasses
import subprocess
import textwrap
from pathlib import Path

import pytest

from repropack.errors import ManifestError, UsageError
from repropack.manifest import load_manifest
from repropack.manifest.dag import expand

REPO = Path(__file__).resolve().parents[3]


def project(tmp_path: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "repropack.toml").write_text('[project]\nname = "t"\n' + textwrap.dedent(manifest))
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def dag_of(tmp_path, manifest, files=None, **params):
    return expand(load_manifest(project(tmp_path, manifest, files)), params)


def test_quickstart_scatter_and_gather():
    dag = expand(load_manifest(REPO / "examples" / "quickstart"))
    assert list(dag.instances) == ["count[sample=alpha]", "count[sample=beta]", "count[sample=gamma]", "summary"]
    summary = dag.instances["summary"]
    assert summary.inputs == ("results/alpha.count", "results/beta.count", "results/gamma.count")
    assert summary.deps == ("count[sample=alpha]", "count[sample=beta]", "count[sample=gamma]")
    assert dag.producers["results/beta.count"] == "count[sample=beta]"
    count = dag.instances["count[sample=beta]"]
    assert count.command() == "python scripts/count.py --min-length 3 data/beta.txt results/beta.count"
    assert count.sources == ("scripts/count.py",)
    assert dict(count.params) == {"min_length": 3}
    assert dict(summary.params) == {}


def test_product_foreach_ids_sort_keys(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "align"
        run = "align {sample} {lane} > {outputs}"
        foreach = { sample = ["b", "a"], lane = [1, 2] }
        outputs = ["aln/{sample}_{lane}.bam"]
    """)
    assert list(dag.instances) == [
        "align[lane=1,sample=b]", "align[lane=2,sample=b]", "align[lane=1,sample=a]", "align[lane=2,sample=a]",
    ]
    inst = dag.instances["align[lane=2,sample=a]"]
    assert dict(inst.wildcards) == {"sample": "a", "lane": "2"}
    assert inst.outputs == ("aln/a_2.bam",)


def test_explicit_rows_and_gather_per_sample_in_producer_order(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "align"
        run = "align {sample} {lane} > {outputs}"
        foreach = [
          { sample = "a", lane = 2 },
          { sample = "b", lane = 1 },
          { sample = "a", lane = 1 },
        ]
        outputs = ["aln/{sample}_{lane}.bam"]

        [[steps]]
        name = "merge"
        run = "merge {outputs} {inputs}"
        foreach = { sample = ["a", "b"] }
        inputs = ["aln/{sample}_{lane}.bam"]
        outputs = ["merged/{sample}.bam"]
    """)
    merge_a = dag.instances["merge[sample=a]"]
    assert merge_a.inputs == ("aln/a_2.bam", "aln/a_1.bam")  # the producer's row order
    assert merge_a.deps == ("align[lane=2,sample=a]", "align[lane=1,sample=a]")
    assert dag.instances["merge[sample=b]"].inputs == ("aln/b_1.bam",)
    assert merge_a.command() == "merge merged/a.bam aln/a_2.bam aln/a_1.bam"


def test_gather_that_finds_nothing_for_a_value(tmp_path):
    with pytest.raises(ManifestError, match="gathers nothing from step 'align' for sample=c"):
        dag_of(tmp_path, """
            [[steps]]
            name = "align"
            run = "align > {outputs}"
            foreach = { sample = ["a"], lane = [1] }
            outputs = ["aln/{sample}_{lane}.bam"]
            [[steps]]
            name = "merge"
            run = "merge {inputs} > {outputs}"
            foreach = { sample = ["a", "c"] }
            inputs = ["aln/{sample}_{lane}.bam"]
            outputs = ["merged/{sample}.bam"]
        """)


NEEDS = """
    [[steps]]
    name = "prepare"
    run = "mkdir -p {sample}"
    foreach = { sample = ["a", "b"] }
    [[steps]]
    name = "setup"
    run = "true"
    [[steps]]
    name = "work"
    run = "echo {sample} > {outputs}"
    foreach = { sample = ["a", "b"] }
    outputs = ["out/{sample}.txt"]
    needs = ["prepare", "setup"]
    [[steps]]
    name = "report"
    run = "echo done > {outputs}"
    outputs = ["report.txt"]
    needs = ["work"]
"""


def test_needs_pairs_by_shared_key_else_waits_for_all(tmp_path):
    dag = dag_of(tmp_path, NEEDS)
    assert dag.instances["work[sample=a]"].deps == ("prepare[sample=a]", "setup")
    assert dag.instances["work[sample=b]"].deps == ("prepare[sample=b]", "setup")
    assert dag.instances["report"].deps == ("work[sample=a]", "work[sample=b]")


def test_needs_cycle_is_named(tmp_path):
    with pytest.raises(ManifestError, match="cycle: .*a -> b|cycle: .*b -> a"):
        dag_of(tmp_path, """
            [[steps]]
            name = "a"
            run = "true"
            needs = ["b"]
            [[steps]]
            name = "b"
            run = "true"
            needs = ["a"]
        """)


def test_topological_order_follows_dependencies_not_file_order(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "last"
        run = "cat {inputs} > {outputs}"
        inputs = ["mid.txt"]
        outputs = ["end.txt"]
        [[steps]]
        name = "first"
        run = "echo > {outputs}"
        outputs = ["mid.txt"]
    """)
    assert list(dag.instances) == ["first", "last"]
    assert dag.instances["last"].deps == ("first",)


def test_named_inputs_outputs_and_temporary_outputs(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "align"
        run = "bwa {inputs.ref} {inputs.reads} -o {outputs.bam} --log {outputs.log}"
        inputs = { ref = "ref.fa", reads = "r 1.fq" }
        outputs = { bam = "out.bam", log = "out.log" }
    """)
    inst = dag.instances["align"]
    assert inst.named_inputs == {"ref": ("ref.fa",), "reads": ("r 1.fq",)}
    assert inst.named_outputs == {"bam": ("out.bam",), "log": ("out.log",)}
    assert inst.command() == "bwa ref.fa 'r 1.fq' -o out.bam --log out.log"
    assert inst.command(outputs=["tmp/a.bam", "tmp/a.log"]) == "bwa ref.fa 'r 1.fq' -o tmp/a.bam --log tmp/a.log"
    assert inst.key_material() == inst.command()


def test_attempt_cpus_and_inputs_list(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "s"
        run = "tool --threads {resources.cpus} --try {attempt} --list {inputs:list} > {outputs}"
        inputs = ["a.txt", "b.txt"]
        outputs = ["o.txt"]
        resources = { cpus = 4, memory = "2GB * attempt" }
    """)
    inst = dag.instances["s"]
    with pytest.raises(ValueError, match="inputs_list"):
        inst.command()
    assert inst.uses_inputs_list
    assert inst.command(attempt=3, cpus=2, inputs_list=".repropack/x y.list") == \
        "tool --threads 2 --try 3 --list '.repropack/x y.list' > o.txt"
    assert inst.key_material() == "tool --threads 4 --try 1 --list {inputs:list} > o.txt"
    assert inst.step.resources.memory.at(2) == 4 * 10**9


def test_params_overrides_are_typed_and_render_as_written(tmp_path):
    manifest = """
        [params]
        n = 3
        ratio = 1.50
        label = "a b"
        flag = false
        [[steps]]
        name = "s"
        run = "tool {params.n} {params.ratio} {params.label} {params.flag} > {outputs}"
        outputs = ["o.txt"]
    """
    dag = dag_of(tmp_path, manifest)
    assert dag.instances["s"].command() == "tool 3 1.50 'a b' false > o.txt"
    dag = expand(load_manifest(tmp_path), {"n": "05", "ratio": "2e-3", "flag": "yes", "label": "$(x)"})
    inst = dag.instances["s"]
    assert inst.params == {"n": 5, "ratio": 0.002, "label": "$(x)", "flag": True}
    assert inst.command() == "tool 05 2e-3 '$(x)' true > o.txt"
    with pytest.raises(UsageError, match="no parameter 'm'"):
        expand(load_manifest(tmp_path), {"m": "1"})
    with pytest.raises(UsageError, match="expected an integer"):
        expand(load_manifest(tmp_path), {"n": "many"})


def test_param_in_a_path_is_checked_after_override(tmp_path):
    project(tmp_path, """
        [params]
        out = "results"
        [[steps]]
        name = "s"
        run = "echo > {outputs}"
        outputs = ["{params.out}/o.txt"]
    """)
    manifest = load_manifest(tmp_path)
    assert expand(manifest, {"out": "other/./x"}).instances["s"].outputs == ("other/x/o.txt",)
    with pytest.raises(ManifestError, match="escapes the project"):
        expand(manifest, {"out": "../elsewhere"})


def test_numbers_in_foreach_render_as_written(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "s"
        run = "tool {k} > {outputs}"
        foreach = { k = [1, 2.50, 10] }
        outputs = ["o_{k}.txt"]
    """)
    assert [i.command() for i in dag.instances.values()] == [
        "tool 1 > o_1.txt", "tool 2.50 > o_2.50.txt", "tool 10 > o_10.txt",
    ]


HOSTILE = ["a b", "it's", '"q"', "$(touch pwned)", "`touch pwned`", "x;touch pwned", "line\nbreak", "-rf", "*"]


def test_hostile_values_reach_the_command_inert(tmp_path):
    project(tmp_path, """
        [params]
        v = "plain"
        [[steps]]
        name = "s"
        run = "printf '%s|' {params.v} {k} > {outputs}"
        foreach = { k = ["a b", "it's", "$(touch pwned2)"] }
        outputs = ["out/{k}.txt"]
    """)
    manifest = load_manifest(tmp_path)
    (tmp_path / "out").mkdir()
    for value in HOSTILE:
        for inst in expand(manifest, {"v": value}).instances.values():
            subprocess.run(["bash", "-euo", "pipefail", "-c", inst.command()], cwd=tmp_path, check=True)
            assert (tmp_path / inst.outputs[0]).read_text() == f"{value}|{inst.wildcards['k']}|"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_pipes(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "produce"
        run = "seq 10 > {outputs}"
        outputs = [{ path = "stream.txt", pipe = true }, "count.txt"]
        [[steps]]
        name = "consume"
        run = "wc -l < {inputs} > {outputs}"
        inputs = ["stream.txt"]
        outputs = ["lines.txt"]
    """)
    assert dag.instances["produce"].pipes == frozenset({"stream.txt"})
    assert dag.instances["consume"].deps == ("produce",)
    assert dag.instances["consume"].pipes == frozenset()


def test_pipe_read_twice_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="2 instances read it"):
        dag_of(tmp_path, """
            [[steps]]
            name = "produce"
            run = "seq 10 > {outputs}"
            outputs = [{ path = "stream.txt", pipe = true }]
            [[steps]]
            name = "consume"
            run = "cat {inputs} > {outputs}"
            foreach = { n = [1, 2] }
            inputs = ["stream.txt"]
            outputs = ["out_{n}.txt"]
        """)


def test_sources_default_to_project_files_the_command_names(tmp_path):
    dag = dag_of(tmp_path, """
        [[steps]]
        name = "s"
        run = "python scripts/run.py --config=conf/c.yml missing.py {inputs} > {outputs}"
        inputs = ["data.txt"]
        outputs = ["o.txt"]
        [[steps]]
        name = "t"
        run = "python scripts/{k}.py > {outputs}"
        foreach = { k = ["x", "y"] }
        outputs = ["t_{k}.txt"]
        sources = ["scripts/{k}.py", "lib/common.py"]
    """, {"scripts/run.py": "", "conf/c.yml": "", "data.txt": ""})
    assert dag.instances["s"].sources == ("scripts/run.py", "conf/c.yml")
    assert dag.instances["t[k=y]"].sources == ("scripts/y.py", "lib/common.py")


def test_select(tmp_path):
    dag = dag_of(tmp_path, NEEDS)
    assert set(dag.select(["work"]).instances) == {
        "work[sample=a]", "work[sample=b]", "prepare[sample=a]", "prepare[sample=b]", "setup",
    }
    assert set(dag.select(from_="work").instances) == {"work[sample=a]", "work[sample=b]", "report"}
    assert set(dag.select(until="work", from_="prepare").instances) == {
        "prepare[sample=a]", "prepare[sample=b]", "work[sample=a]", "work[sample=b]",
    }
    assert len(dag.select()) == len(dag)
    with pytest.raises(UsageError, match="did you mean 'work'"):
        dag.select(["wrok"])


def test_instances_are_immutable():
    dag = expand(load_manifest(REPO / "examples" / "quickstart"))
    inst = dag.instances["summary"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        dag.instances["x"] = inst  # type: ignore[index]
    with pytest.raises(TypeError):
        inst.wildcards["k"] = "v"  # type: ignore[index]


def test_gather_of_100000_inputs(tmp_path):
    values = ", ".join(f'"s{i}"' for i in range(100_000))
    dag = dag_of(tmp_path, f"""
        [[steps]]
        name = "count"
        run = "wc -c {{inputs}} > {{outputs}}"
        foreach = {{ sample = [{values}] }}
        inputs = ["data/{{sample}}.txt"]
        outputs = ["results/{{sample}}.count"]
        [[steps]]
        name = "summary"
        run = "cat {{inputs:list}} > {{outputs}}"
        inputs = ["results/{{sample}}.count"]
        outputs = ["summary.txt"]
    """)
    assert len(dag) == 100_001
    summary = dag.instances["summary"]
    assert len(summary.inputs) == len(summary.deps) == 100_000
    assert summary.inputs[0] == "results/s0.count" and summary.inputs[-1] == "results/s99999.count"
    assert summary.command(inputs_list="list.txt") == "cat list.txt > summary.txt"
    assert list(dag.instances)[-1] == "summary"
