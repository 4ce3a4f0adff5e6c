"""Every `$` line of the README's tour, in order, on a fresh copy of examples/quickstart.

The base image is pinned the way the README tells a user without registry access:
REPROPACK_BASE_OVERRIDE=local/debian:bookworm-python (what .ci/run does too).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _engines import LOCAL_BASE_IMAGE

REPO = Path(__file__).resolve().parents[2]


def tour_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A five-minute tour"):]
    block = re.search(r"```console\n(.*?)```", section, flags=re.S).group(1)
    return [line[2:].split("  #", 1)[0].strip() for line in block.splitlines() if line.startswith("$ ")]


def test_the_tour_is_what_the_test_runs():
    lines = tour_lines()
    assert lines[0] == "cd examples/quickstart"
    assert "repropack run --profile docker --no-resume" in lines
    assert len(lines) >= 10


@pytest.mark.docker
@pytest.mark.apptainer
@pytest.mark.network
def test_each_tour_line_runs_on_a_fresh_copy(tmp_path, base_image):
    work = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", work,
                    ignore=lambda d, names: {"results", ".repropack"} & set(names) if d.endswith("quickstart") else set())
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "REPROPACK_BASE_OVERRIDE": LOCAL_BASE_IMAGE}
    outputs: dict[str, subprocess.CompletedProcess] = {}
    for line in tour_lines():
        if line.startswith("cd "):
            continue  # the copy is the tour's examples/quickstart
        done = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"$ {line}\n{done.stdout}\n{done.stderr}"
        outputs[line] = done
    assert "0 to run, 4 up to date" in outputs["repropack run --dry-run"].stderr
    for runtime in ("docker", "apptainer"):
        assert ": 4 done" in outputs[f"repropack run --profile {runtime} --no-resume"].stderr
    assert "4 ok, 0 changed, 0 missing" in outputs["repropack verify --against host.sha256"].stderr
    assert ": 4 done" in outputs["repropack run --param min_length=5"].stderr  # every count changes, so the summary
    assert list((work / ".repropack" / "reports").glob("*.html"))
