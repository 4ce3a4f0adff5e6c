"""Issue 8 defect 2: a link a step plants never lets the runner (or a container) reach outside the project.

A step plants ``out/sub -> VICTIM`` (a folder outside the project). The next step's outputs under
``out/sub/`` must neither make the runner delete, create or move anything in VICTIM nor get VICTIM
mounted into a container. Each test compares a sentinel of VICTIM (inode, size, mtime, sha256 of
every entry) before and after, and reads the outcome through ``run``, ``status --json`` and ``logs``.
"""

from __future__ import annotations

import pytest
from runhelp import repropack, sentinel, share_sif, status_json, write_project
from test_run_engines import PROFILES

RUNTIMES = [
    pytest.param("host", id="host"),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
    pytest.param("apptainer", id="apptainer", marks=[pytest.mark.docker, pytest.mark.apptainer]),
]


def _project(tmp_path, request, runtime, steps: str):
    image = request.getfixturevalue("base_image") if runtime != "host" else "none"
    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [image]
        name = "{image}"
        {steps}
        {PROFILES}
    """)
    if runtime == "apptainer":
        share_sif(root, request.getfixturevalue("base_sif"))
    return root


def _victim(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("precious\n")
    (victim / "deep").mkdir()
    (victim / "deep" / "g").write_text("also precious\n")
    return victim


def _run(root, runtime, *args):
    profile = [] if runtime == "host" else ["--profile", runtime]
    done = repropack(root, "run", *profile, *args, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


PLANT = """
[[steps]]
name = "plant"
run = "mkdir -p out && ln -s {victim} out/sub && echo ok > out/planted"
outputs = ["out/planted"]
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_defect02_in_place_output_under_a_planted_link_touches_nothing_outside(tmp_path, request, runtime):
    """In place (no {outputs}): the runner would remove out/sub/f before the step, and mount out/sub."""
    victim = _victim(tmp_path)
    root = _project(tmp_path, request, runtime, PLANT.format(victim=victim) + """
        [[steps]]
        name = "use"
        run = "cat out/planted && echo new > out/sub/f"
        inputs = ["out/planted"]
        outputs = ["out/sub/f"]
    """)
    before = sentinel(victim)
    done = _run(root, runtime)
    assert sentinel(victim) == before
    assert done.returncode == 1, done.stderr
    use = status_json(root)["instances"]["use"]
    assert use["state"] == "failed"
    assert f"out/sub is a symbolic link (to {victim})" in use["message"]
    assert f"out/sub is a symbolic link (to {victim})" in done.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_defect02_staged_output_is_not_moved_through_an_intermediate_link(tmp_path, request, runtime):
    """With {outputs}: the finished output would be moved to out/sub/deep/g, i.e. into VICTIM/deep/g."""
    victim = _victim(tmp_path)
    root = _project(tmp_path, request, runtime, PLANT.format(victim=victim) + """
        [[steps]]
        name = "use"
        run = "cat out/planted && for o in {outputs}; do echo new > $o; done"
        inputs = ["out/planted"]
        outputs = ["out/sub/deep/g", "out/sub/h"]
    """)
    before = sentinel(victim)
    done = _run(root, runtime)
    assert sentinel(victim) == before
    assert done.returncode == 1, done.stderr
    use = status_json(root)["instances"]["use"]
    assert use["state"] == "failed"
    assert "out/sub is a symbolic link" in use["message"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_defect02_output_that_is_a_link_to_outside_is_replaced_not_followed(tmp_path, request, runtime):
    """The final component planted as a link: the runner removes the link itself, never its target."""
    victim = _victim(tmp_path)
    root = _project(tmp_path, request, runtime, f"""
        [[steps]]
        name = "plant"
        run = "mkdir -p out/sub && ln -s {victim}/f out/sub/f && echo ok > out/planted"
        outputs = ["out/planted"]
        [[steps]]
        name = "use"
        run = "cat out/planted && echo new > out/sub/f"
        inputs = ["out/planted"]
        outputs = ["out/sub/f"]
    """)
    before = sentinel(victim)
    done = _run(root, runtime)
    assert sentinel(victim) == before
    assert done.returncode == 0, done.stderr
    assert (root / "out/sub/f").read_text() == "new\n" and not (root / "out/sub/f").is_symlink()
    assert repropack(root, "verify").returncode == 0


@pytest.mark.parametrize("runtime", [p for p in RUNTIMES if p.id != "apptainer"])
def test_defect02_scratch_home_swapped_for_a_link_is_not_emptied_through_it(tmp_path, request, runtime):
    """A step replaces its scratch HOME by a link; the runner empties HOME between steps."""
    victim = _victim(tmp_path)
    root = _project(tmp_path, request, runtime, f"""
        [[steps]]
        name = "swap"
        run = "rm -rf \\"$HOME\\" && ln -s {victim} \\"$HOME\\" && echo ok > {{outputs}}"
        outputs = ["out/swapped"]
        [[steps]]
        name = "after"
        run = "ls -A \\"$HOME\\" > {{outputs}}"
        inputs = ["out/swapped"]
        outputs = ["out/home"]
    """)
    before = sentinel(victim)
    done = _run(root, runtime, "-j", "1")
    assert sentinel(victim) == before
    assert done.returncode == 0, done.stderr
    assert (root / "out/home").read_text() == ""  # the next step got a fresh, empty HOME


@pytest.mark.parametrize("runtime", [p for p in RUNTIMES if p.id != "apptainer"])
def test_defect02_links_planted_in_the_attempt_directory_are_not_written_through(tmp_path, request, runtime):
    """A step links its attempt's metrics.json and exit_code to a file outside; the runner writes both after it."""
    victim = _victim(tmp_path)
    root = _project(tmp_path, request, runtime, f"""
        [[steps]]
        name = "plant"
        run = "d=$(dirname \\"$0\\"); ln -s {victim}/f \\"$d/metrics.json\\"; ln -s {victim}/f \\"$d/exit_code\\"; false"
        outputs = ["out/x"]
    """)
    before = sentinel(victim)
    done = _run(root, runtime)
    assert sentinel(victim) == before
    assert done.returncode == 1, done.stderr
    logs = repropack(root, "logs", "plant")
    assert "Traceback" not in logs.stderr
    assert status_json(root)["instances"]["plant"]["failure"] == "exit"
