"""Issue 8, defect 1: paths that normalise to something else (``.``, ``./``, ``//``, the manifest,
the state folder, another output) are refused by ``check`` and ``run`` before anything is touched."""

from __future__ import annotations

import json

import pytest
from repropack.errors import EXIT_MANIFEST
from runhelp import repropack, write_project
from sentinel import changed, one_line_error, snapshot

OTHER = """
[project]
name = "paths"

[params]
d = "out"
here = "."   # a parameter whose value is '.': as an output, the project folder itself

[[steps]]
name = "other"
outputs = ["out/keep.txt"]
run = "echo keep > {outputs}"
"""


def _project(tmp_path, step: str, files: dict[str, str] | None = None):
    manifest = OTHER + "\n[[steps]]\nname = \"s\"\nrun = \"mkdir -p {outputs} && echo x > {outputs}/f\"\n" + step
    return write_project(tmp_path / "p", manifest, {"out/notes.txt": "mine\n", **(files or {})})


def _refused(root, *args: str, where: str) -> str:
    """``check`` and ``run`` both refuse (exit 3, one line per problem, naming ``where``); nothing changed."""
    before = snapshot(root)
    done = repropack(root, "check")
    assert done.returncode == EXIT_MANIFEST, done.stdout + done.stderr
    assert where in done.stdout, done.stdout
    assert one_line_error(done.stderr) and "Traceback" not in done.stdout
    ran = repropack(root, "run", *args)
    assert ran.returncode == EXIT_MANIFEST, ran.stdout + ran.stderr
    assert one_line_error(ran.stderr) and where in ran.stderr, ran.stderr
    assert not changed(before, snapshot(root)), changed(before, snapshot(root))
    assert not (root / ".repropack" / "journal.jsonl").exists()
    return done.stdout


def test_defect01_dot_value_cannot_delete_siblings(tmp_path):
    root = _project(tmp_path, 'foreach = { s = ["."] }\noutputs = ["out/{s}"]\nneeds = ["other"]\n')
    out = _refused(root, where="steps[1].foreach.s[0]")
    assert "repropack.toml:" in out and "'.'" in out
    assert (root / "out" / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("step, where", [
    ('outputs = ["."]', "steps[1].outputs[0]"),
    ('outputs = ["./"]', "steps[1].outputs[0]"),
    ('outputs = ["a/.."]', "steps[1].outputs[0]"),
    ('outputs = ["{params.here}"]', "steps[1].outputs[0]"),
    ('foreach = { s = ["", "x"] }\noutputs = ["{s}"]', "steps[1].foreach.s[0]"),
    ('inputs = ["."]\noutputs = ["y"]', "steps[1].inputs[0]"),
])
def test_defect01_project_folder_is_never_an_output(tmp_path, step, where):
    root = _project(tmp_path, step + "\n")
    _refused(root, where=where)


@pytest.mark.parametrize("output", [
    "repropack.toml", "./repropack.toml", "repropack.toml/x", "repropack.lock", "locks", "locks/a.lock",
    ".repropack", ".repropack/journal.jsonl", ".//.repropack/cache",
])
def test_defect01_manifest_lock_and_state_are_never_outputs(tmp_path, output):
    root = _project(tmp_path, f'outputs = ["{output}"]\n', {"repropack.lock": "lock\n", "locks/a.lock": "a\n"})
    out = _refused(root, where="steps[1].outputs[0]")
    assert any(word in out for word in ("the manifest", "repropack.lock", "locks/", ".repropack/")), out


def test_defect01_foreach_value_naming_the_manifest(tmp_path):
    root = _project(tmp_path, 'foreach = { s = ["a", "repropack.toml"] }\noutputs = ["{s}"]\n')
    out = _refused(root, where="steps[1].outputs[0]")
    assert "s[s=repropack.toml]" in out and "the manifest" in out


def test_defect01_dot_segment_collides_with_another_step(tmp_path):
    # foreach = {s = [".", "x"]} with out/{s}/f.txt: the '.' instance would write the other step's file
    root = _project(tmp_path, 'foreach = { s = [".", "x"] }\noutputs = ["out/{s}/f.txt"]\n')
    _refused(root, where="steps[1].foreach.s[0]")


@pytest.mark.parametrize("output", ["out//keep.txt", "./out/keep.txt", "out/./keep.txt", "{params.d}/keep.txt"])
def test_defect01_collisions_are_found_after_normalisation(tmp_path, output):
    root = _project(tmp_path, f'outputs = ["{output}"]\n')
    out = _refused(root, where="steps[1].outputs[0]")
    assert "'out/keep.txt'" in out and "is also written by step 'other'" in out
    assert "{params.d}" not in output or "with params.d='out'" in out  # says where the spelling came from


@pytest.mark.parametrize("outputs", ['["out"]', '["out/"]', '["x", "x/y"]', '["x/./y", "./x"]'])
def test_defect01_folder_output_and_an_output_inside_it(tmp_path, outputs):
    root = _project(tmp_path, f"outputs = {outputs}\n")
    out = _refused(root, where="outputs[")
    assert "lies inside" in out or "names a folder" in out


def test_defect01_param_override_is_normalised_like_the_manifest(tmp_path):
    root = write_project(tmp_path / "p", OTHER + """
[[steps]]
name = "s"
outputs = ["{params.d}/f.txt"]
run = "echo s > {outputs}"
""", {"out/notes.txt": "mine\n"})
    assert repropack(root, "check").returncode == 0
    before = snapshot(root)
    for value, said in ((".", "'f.txt'"), ("../up", "'..'"), ("/tmp", "absolute"), ("", "absolute"),
                        ("out/..", "'..'"), (".repropack", ".repropack/"), ("repropack.toml", "the manifest")):
        ran = repropack(root, "run", "--param", f"d={value}")
        assert ran.returncode == EXIT_MANIFEST or value == ".", (value, ran.stderr)
        if value == ".":  # ./f.txt is f.txt: a plain file in the project, allowed
            assert ran.returncode == 0, ran.stderr
            assert (root / "f.txt").read_text() == "s\n"
            (root / "f.txt").unlink()
            continue
        assert one_line_error(ran.stderr) and "steps[1].outputs[0]" in ran.stderr, (value, ran.stderr)
        assert said in ran.stderr, (value, ran.stderr)
    assert changed(before, snapshot(root)) <= {"out/keep.txt"}  # the one run allowed wrote only its outputs


def test_defect01_data_path_cannot_replace_the_manifest(tmp_path):
    root = write_project(tmp_path / "p", OTHER + """
[data.ref]
url = "file:///etc/hostname"
path = "./repropack.toml"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
""")
    _refused(root, where="data.ref.path")


def test_defect01_module_prefix_cannot_reach_the_state_folder(tmp_path):
    module = """
[module]
name = "m"
[[steps]]
name = "w"
outputs = ["{prefix}/x.txt"]
run = "echo m > {outputs}"
"""
    for prefix in (".repropack", "locks", "./.repropack/runs"):
        root = write_project(tmp_path / prefix.replace("/", "_"), OTHER + f"""
[[steps]]
name = "use1"
use = "mod.toml"
prefix = "{prefix}"
""", {"mod.toml": module})
        out = _refused(root, where="outputs[0]")
        assert "in step 'use1.w'" in out, out


def test_defect01_dry_run_refuses_too(tmp_path):
    root = _project(tmp_path, 'foreach = { s = ["."] }\noutputs = ["out/{s}"]\n')
    for args in (("run", "--dry-run"), ("run", "--dry-run", "--json")):
        done = repropack(root, *args)
        assert done.returncode == EXIT_MANIFEST and one_line_error(done.stderr), (args, done.stdout, done.stderr)
    json.loads(repropack(root, "check", "--json").stdout)  # still well-formed JSON with the problem
