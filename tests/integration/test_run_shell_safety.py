"""Values with spaces, quotes, $(...), backticks, ;, newlines or a leading - reach the command as inert words."""

from __future__ import annotations

import ast
import json

import pytest
from runhelp import repropack, write_project

PARAM = "a b 'c' \"d\" $(touch PWNED1) `touch PWNED2` ; touch PWNED3 \n touch PWNED4 & -x"
VALUES = ["-n", "--help", "sp ace", "q'uote", 'd"q', "$(touch PWNED5)", "`touch PWNED6`", "semi;touch PWNED7",
          "amp&touch PWNED8", "star*", "dollar$HOME"]
ARGV = "python3 -c 'import sys; print(repr(sys.argv[1:]))'"


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _project(root, runtime_profile=""):
    values = ", ".join(_toml(v) for v in VALUES)
    return write_project(root, f"""
        [project]
        name = "safety"
        [params]
        v = {_toml(PARAM)}
        [[steps]]
        name = "param"
        run = "{ARGV} {{params.v}} {{outputs}} > {{outputs}}"
        outputs = ["out/param.txt"]
        [[steps]]
        name = "scatter"
        run = "{ARGV} {{w}} {{inputs}} > {{outputs}}"
        foreach = {{ w = [{values}] }}
        inputs = ["in/{{w}}"]
        outputs = ["out/{{w}}.txt"]
        {runtime_profile}
    """, {f"in/{v}": v for v in VALUES})


def _check(root):
    argv = ast.literal_eval((root / "out/param.txt").read_text())
    assert argv[0] == PARAM and len(argv) == 2  # one word, byte for byte; then the (temporary) output path
    for value in VALUES:
        assert ast.literal_eval((root / f"out/{value}.txt").read_text()) == [value, f"in/{value}"]
    assert not [p for p in root.rglob("PWNED*")]


def test_shell_safety_on_the_host(tmp_path):
    root = _project(tmp_path / "a dir with 'quotes' and $(spaces)")
    repropack(root, "run", check=True)
    _check(root)
    assert not list(tmp_path.rglob("PWNED*"))
    assert repropack(root, "run", "--dry-run", check=True).stdout == ""


@pytest.mark.docker
def test_shell_safety_in_docker(tmp_path, base_image):
    root = _project(tmp_path / "p", f"""
        [image]
        name = "{base_image}"
        [profiles.docker]
        runtime = "docker"
    """)
    repropack(root, "run", "--profile", "docker", check=True)
    _check(root)
