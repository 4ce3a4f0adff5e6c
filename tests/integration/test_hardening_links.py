"""Issue 8, defect 3: a symbolic link as an output is refused (failure ``output-link``, nothing
published, nothing of its target hashed); a link inside a folder output may point inside that
folder only (recorded as a link, never followed); inputs and outputs under a folder link leading
outside the project are refused when the run is planned."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from runhelp import journal, repropack, share_sif, write_project
from sentinel import changed, one_line_error, snapshot
from test_run_engines import PROFILES

HEAD = """
[project]
name = "links"

[[steps]]
name = "s"
"""


def _project(tmp_path, step: str, files: dict[str, str] | None = None) -> Path:
    return write_project(tmp_path / "p", HEAD + step, {"data/in.txt": "in\n", **(files or {})})


def _status(root) -> dict:
    done = repropack(root, "status", "--json", check=True)
    return json.loads(done.stdout)


def _records(root: Path) -> str:
    """Everything repropack keeps about the project (journal, run records, hash cache), as text."""
    texts = []
    for path in (root / ".repropack").rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix in (".jsonl", ".json", ".sha256", ".txt", ""):
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def _failed_with_link(root: Path, instance: str = "s") -> dict:
    ran = repropack(root, "run", "--json")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    result = json.loads(ran.stdout)["instances"][instance]
    assert result["status"] == "failed" and result["failure"] == "output-link", result
    assert _status(root)["instances"][instance]["state"] in ("failed",), _status(root)
    return result


PASSWD = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()


@pytest.mark.parametrize("command", [
    "ln -s /etc/passwd {outputs}",                      # the reproduction: a link out of the project
    "ln -s ../data/in.txt {outputs}",                   # relative, valid only at the final place
    "ln -s does-not-exist {outputs}",                   # dangling everywhere
    "mkdir -p out && ln -s /etc/passwd out/x.txt",      # in place (no {outputs}): the link is the output
])
def test_defect03_output_link_is_refused(tmp_path, command):
    root = _project(tmp_path, f'outputs = ["out/x.txt"]\nrun = "{command}"\n')
    result = _failed_with_link(root)
    assert "out/x.txt" in result["message"] and "symbolic link" in result["message"], result
    assert not os.path.lexists(root / "out" / "x.txt")  # nothing published
    records = _records(root)
    assert PASSWD not in records  # nothing of the target was hashed
    assert "/etc/passwd" not in json.dumps(json.loads((root / ".repropack" / "cache" / "filehash.json").read_text())
                                           if (root / ".repropack" / "cache" / "filehash.json").exists() else {})
    again = repropack(root, "run", "--dry-run", "--json", check=True)
    assert [e["id"] for e in json.loads(again.stdout)["to_run"]] == ["s"]  # not taken as done


def test_defect03_link_to_etc_does_not_reach_verify(tmp_path):
    root = _project(tmp_path, 'outputs = ["out/x.txt"]\nrun = "ln -s /etc/passwd {outputs}"\n')
    _failed_with_link(root)
    done = repropack(root, "verify")
    assert "Traceback" not in done.stderr and "passwd" not in done.stdout


@pytest.mark.parametrize("command, why", [
    ("mkdir -p {outputs} && echo a > {outputs}/a && ln -s /etc {outputs}/etc", "absolute"),
    ("mkdir -p {outputs} && ln -s ../../../data/in.txt {outputs}/in", "outside"),
    ("mkdir -p {outputs}/sub && ln -s ../../.. {outputs}/sub/up", "outside"),
    ("mkdir -p {outputs} && ln -s missing {outputs}/gone", "missing"),
])
def test_defect03_folder_output_with_a_link_leading_out(tmp_path, command, why):
    root = _project(tmp_path, f'outputs = ["out/tree"]\nrun = "{command}"\n')
    before = snapshot(tmp_path)
    result = _failed_with_link(root)
    assert "out/tree/" in result["message"], result
    assert not os.path.lexists(root / "out" / "tree")
    assert {p for p in changed(before, snapshot(tmp_path)) if not p.startswith("p/.repropack")} <= {"p/out"}


def test_defect03_link_inside_a_folder_output_is_kept_as_a_link(tmp_path):
    step = ('outputs = ["out/tree"]\n'
            'run = "mkdir -p {outputs}/d && echo a > {outputs}/d/a && echo a > {outputs}/d/c && ln -s d/a {outputs}/b"\n')
    root = _project(tmp_path, step)
    repropack(root, "run", check=True)
    assert os.readlink(root / "out/tree/b") == "d/a" and (root / "out/tree/b").read_text() == "a\n"
    first = _status(root)["instances"]["s"]
    assert first["state"] == "done"
    assert repropack(root, "verify").returncode == 0
    # the same tree with a copy instead of the link is a different output: the link itself is recorded
    copy = _project(tmp_path / "copy", step.replace("ln -s d/a {outputs}/b", "cp {outputs}/d/a {outputs}/b"))
    repropack(copy, "run", check=True)
    assert _digest(root) != _digest(copy)
    # retargeting the link (same content behind it) is a modification, which verify sees
    os.remove(root / "out/tree/b")
    os.symlink("d/c", root / "out/tree/b")
    changed_tree = repropack(root, "verify", "--json")
    assert changed_tree.returncode != 0 and "out/tree" in changed_tree.stdout, changed_tree.stdout
    plan = json.loads(repropack(root, "run", "--dry-run", "--json", check=True).stdout)
    assert [e["id"] for e in plan["to_run"]] == ["s"], plan


def test_defect03_an_output_replaced_by_a_link_is_rerun_without_reading_the_target(tmp_path):
    root = _project(tmp_path, 'outputs = ["out/x.txt"]\nrun = "echo x > {outputs}"\n')
    repropack(root, "run", check=True)
    os.remove(root / "out/x.txt")
    os.symlink("/etc/passwd", root / "out/x.txt")
    plan = json.loads(repropack(root, "run", "--dry-run", "--json", check=True).stdout)
    assert plan["to_run"] == [{"id": "s", "reasons": ["output out/x.txt modified"]}], plan
    assert PASSWD not in _records(root)
    repropack(root, "run", check=True)
    assert not os.path.islink(root / "out/x.txt") and (root / "out/x.txt").read_text() == "x\n"
    assert Path("/etc/passwd").read_bytes()  # the link was replaced, not written through
    assert PASSWD not in _records(root)
    assert repropack(root, "verify").returncode == 0


def _digest(root: Path) -> str:
    """The tree digest the run recorded for out/tree."""
    return [r for r in journal(root) if r["t"] == "done"][-1]["outputs"]["out/tree"]


@pytest.mark.parametrize("kind", ["input", "output"])
def test_defect03_paths_under_a_folder_link_leading_outside_are_refused(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "in.txt").write_text("secret\n")
    if kind == "input":
        step = 'inputs = ["ext/in.txt"]\noutputs = ["out/x.txt"]\nrun = "cat {inputs} > {outputs}"\n'
    else:
        step = 'outputs = ["ext/x.txt"]\nrun = "echo x > {outputs}"\n'
    root = _project(tmp_path, step)
    os.symlink("../outside", root / "ext")
    before = snapshot(tmp_path)
    for args in (("run",), ("run", "--dry-run")):
        ran = repropack(root, *args)
        assert ran.returncode == 1 and one_line_error(ran.stderr), (args, ran.stdout, ran.stderr)
        assert "'ext'" in ran.stderr and "outside the project" in ran.stderr and "ext/" in ran.stderr, ran.stderr
    assert not {p for p in changed(before, snapshot(tmp_path)) if not p.startswith("p/.repropack")}
    assert "secret" not in _records(root)


def test_defect03_input_that_is_a_link_out_of_the_project_is_refused(tmp_path):
    root = _project(tmp_path, 'inputs = ["data/ext.txt"]\noutputs = ["out/x.txt"]\nrun = "cat {inputs} > {outputs}"\n')
    os.symlink("/etc/passwd", root / "data" / "ext.txt")
    ran = repropack(root, "run")
    assert ran.returncode == 1 and one_line_error(ran.stderr) and "data/ext.txt" in ran.stderr, ran.stderr
    assert PASSWD not in _records(root)


def test_defect03_links_inside_the_project_are_fine(tmp_path):
    step = 'inputs = ["alias/in.txt"]\noutputs = ["via/x.txt"]\nrun = "cat {inputs} > {outputs}"\n'
    root = _project(tmp_path, step)
    os.symlink("data", root / "alias")
    (root / "real").mkdir()
    os.symlink("real", root / "via")
    repropack(root, "run", check=True)
    assert (root / "real" / "x.txt").read_text() == "in\n"
    assert _status(root)["instances"]["s"]["state"] == "done"


ENGINE_STEPS = """
[[steps]]
name = "link"
outputs = ["out/x.txt"]
run = "ln -s /etc/passwd {outputs}"

[[steps]]
name = "tree"
outputs = ["out/tree"]
run = "mkdir -p {outputs} && echo a > {outputs}/a && ln -s /etc {outputs}/etc"

[[steps]]
name = "fine"
outputs = ["out/fine"]
run = "mkdir -p {outputs}/d && echo a > {outputs}/d/a && ln -s d/a {outputs}/b"
"""


@pytest.mark.parametrize("runtime", [pytest.param("docker", marks=pytest.mark.docker),
                                     pytest.param("apptainer", marks=[pytest.mark.docker, pytest.mark.apptainer])])
def test_defect03_output_links_in_containers(tmp_path, base_image, request, runtime):
    """The same refusals when the link is made inside a container (its /etc is not the host's: no matter)."""
    root = write_project(tmp_path / "p", f'[project]\nname = "links"\n[image]\nname = "{base_image}"\n'
                         + PROFILES + ENGINE_STEPS)
    if runtime == "apptainer":
        share_sif(root, request.getfixturevalue("base_sif"))
    ran = repropack(root, "run", "--json", "--keep-going", "--profile", runtime, timeout=900)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    results = json.loads(ran.stdout)["instances"]
    assert results["link"]["failure"] == results["tree"]["failure"] == "output-link", results
    assert results["fine"]["status"] == "done", results
    assert not os.path.lexists(root / "out/x.txt") and not os.path.lexists(root / "out/tree")
    assert os.readlink(root / "out/fine/b") == "d/a"
    assert PASSWD not in _records(root)
    assert repropack(root, "verify").returncode == 0


def test_defect03_verify_does_not_follow_an_output_replaced_by_a_link_out(tmp_path):
    """An output swapped for a link to an outside file with the same bytes is not 'ok': verify reads
    through descriptors opened beneath the project and never follows the link (it passed before)."""
    root = _project(tmp_path, 'outputs = ["out/x.txt"]\nrun = "echo same > {outputs}"\n')
    assert repropack(root, "run").returncode == 0
    assert repropack(root, "verify").returncode == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("same\n")
    (root / "out" / "x.txt").unlink()
    (root / "out" / "x.txt").symlink_to(outside)
    done = repropack(root, "verify", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    changed_paths = [entry["path"] for entry in json.loads(done.stdout)["changed"]]
    assert changed_paths == ["out/x.txt"]
