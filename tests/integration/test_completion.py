"""Shell completion, asked of the installed script the way bash asks it (issue 15 item 6)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("repropack")


@pytest.fixture
def quickstart(tmp_path):
    root = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", root)
    return root


def complete(cwd: Path, line: str, shell: str = "bash") -> list[str]:
    """What `repropack` offers for the last word of `line` (an empty last word when it ends in a space)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {**os.environ, "_REPROPACK_COMPLETE": f"{shell}_complete", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    done = subprocess.run([str(SCRIPT)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True)
    return [entry.split(",", 1)[1] for entry in done.stdout.splitlines() if entry]


def test_step_name_as_bash_asks(quickstart):
    assert complete(quickstart, "repropack run co") == ["count"]
    assert complete(quickstart, "repropack run ") == ["count", "summary"]
    assert complete(quickstart, "repropack run --until s") == ["summary"]


def test_commands_options_profiles_environments_instances(quickstart):
    assert complete(quickstart, "repropack r") == ["report", "rerun", "run"]
    assert "--frozen" in complete(quickstart, "repropack run --fr")
    assert complete(quickstart, "repropack run --profile ") == ["apptainer", "cloud", "docker", "hpc", "local"]
    assert complete(quickstart, "repropack env create ") == ["default"]
    assert complete(quickstart, "repropack logs count:") == ["count:alpha", "count:beta", "count:gamma"]
    assert "count[sample=beta]" in complete(quickstart, "repropack logs count[")


def test_project_dir_is_honoured_and_a_broken_manifest_offers_nothing(quickstart, tmp_path):
    assert complete(tmp_path, f"repropack run -C {quickstart} su") == ["summary"]
    (quickstart / "repropack.toml").write_text("[[steps]\n")
    assert complete(quickstart, "repropack run co") == []


def test_the_documented_activation_line_works():
    source = subprocess.run([str(SCRIPT)], env={**os.environ, "_REPROPACK_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "_repropack_completion" in source and "complete " in source
    docs = (REPO / "docs" / "cli.md").read_text() + (REPO / "README.md").read_text()
    assert 'eval "$(_REPROPACK_COMPLETE=bash_source repropack)"' in docs
