"""`repropack check` and `repropack init`, and edits through tomlkit."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from repropack.cli import main
from repropack.errors import ManifestErrors
from repropack.manifest import load_manifest
from repropack.manifest.edit import edit_manifest

REPO = Path(__file__).resolve().parents[3]


def test_check_ok(capsys):
    assert main(["check", str(REPO / "examples" / "quickstart")]) == 0
    assert "ok (2 steps, 4 instances, 1 environments)" in capsys.readouterr().out


def test_check_prints_every_problem_and_exits_2(tmp_path, capsys):
    (tmp_path / "repropack.toml").write_text(textwrap.dedent("""\
        [project]
        name = "x"
        [[steps]]
        name = "a"
        run = "cat '{inputs}' > {outputs}"
        inputs = ["in.txt"]
        outputs = ["../out.txt"]
        resources = { memory = "4 parsecs" }
    """))
    assert main(["check", str(tmp_path)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("repropack.toml:5:13: steps[0].run: placeholder {inputs} is inside single quotes; "
                             "remove the quotes: repropack quotes every value itself")
    assert ":7:12: steps[0].outputs[0]: '../out.txt' escapes the project folder" in lines[1]
    assert ":8:15: steps[0].resources.memory: 'parsecs' in '4 parsecs' is not a memory unit" in lines[2]


def test_check_json(tmp_path, capsys):
    (tmp_path / "repropack.toml").write_text('nam = 1\n[project]\nname = "x"\n')
    assert main(["check", "--json", "-C", str(tmp_path)]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["problems"] == [{
        "path": str(tmp_path / "repropack.toml"), "line": 1, "column": 1, "key": "nam",
        "message": "unknown key 'nam'", "hint": "valid keys: requires-repropack, project, environments, channels, "
        "image, data, params, steps, profiles, causes, compare, alerts",
    }]


def test_check_without_manifest(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 3
    assert "no repropack.toml in" in capsys.readouterr().out


def test_init_writes_a_valid_manifest_and_never_overwrites(tmp_path, capsys):
    project = tmp_path / "My Study"
    project.mkdir()
    assert main(["init", "-C", str(project)]) == 0
    manifest = load_manifest(project)
    assert manifest.project.name == "my-study"
    text = (project / "repropack.toml").read_text()
    assert text.startswith("# repropack manifest") and "# [[steps]]" in text
    assert main(["init", "-C", str(project), "--name", "other"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (project / "repropack.toml").read_text() == text


def test_init_from_environment_yml(tmp_path):
    (tmp_path / "environment.yml").write_text(textwrap.dedent("""\
        name: analysis
        channels: [conda-forge, defaults]
        dependencies:
          - python=3.11
          - numpy=1.26
          - scipy>=1.11
          - pip
          - pip:
            - pandas==2.2.*
    """))
    assert main(["init", "-C", str(tmp_path), "--from", str(tmp_path / "environment.yml"), "--name", "study"]) == 0
    env = load_manifest(tmp_path).environments["default"]
    assert env.python == "3.11" and env.channels == ("conda-forge",)
    assert env.conda == ("numpy 1.26.*", "scipy >=1.11") and env.pip == ("pandas==2.2.*",)


def test_init_from_requirements_and_pyproject(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "requirements.txt").write_text("numpy>=1.26  # arrays\n-e .\n--index-url https://example.org/simple\n")
    assert main(["init", "-C", str(tmp_path / "a"), "--from", str(tmp_path / "a" / "requirements.txt")]) == 0
    env = load_manifest(tmp_path / "a").environments["default"]
    assert env.pip == ("numpy>=1.26",) and env.indexes == ("https://example.org/simple",)
    assert "'-e .' was not carried over" in (tmp_path / "a" / "repropack.toml").read_text()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "pyproject.toml").write_text(
        '[project]\nname = "My_Tool"\nrequires-python = ">=3.12"\ndependencies = ["click>=8"]\n')
    assert main(["init", "-C", str(tmp_path / "b"), "--from", str(tmp_path / "b" / "pyproject.toml")]) == 0
    manifest = load_manifest(tmp_path / "b")
    assert manifest.project.name == "my_tool"
    assert manifest.environments["default"].python == "3.12" and manifest.environments["default"].pip == ("click>=8",)


def test_init_from_a_bad_source_writes_nothing(tmp_path, capsys):
    (tmp_path / "requirements.txt").write_text("numpy >>1\n")
    assert main(["init", "-C", str(tmp_path), "--from", str(tmp_path / "requirements.txt")]) == 3
    assert "'numpy >>1' is not a PEP 508 requirement" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requirements.txt"]


COMMENTED = """\
# The study's manifest. Keep this comment.
[project]
name = "study"   # short name

[params]
min_quality = 20 # the cut-off we agreed on

[[steps]]
name = "a"  # first step
run = "echo {params.min_quality} > {outputs}"
outputs = ["out.txt"]
"""


def test_edit_through_tomlkit_keeps_comments(tmp_path):
    path = tmp_path / "repropack.toml"
    path.write_text(COMMENTED)

    def change(doc):
        doc["params"]["min_quality"] = 30

    edit_manifest(path, change)
    assert path.read_text() == COMMENTED.replace("min_quality = 20 #", "min_quality = 30 #")
    assert load_manifest(tmp_path).params["min_quality"] == 30


def test_invalid_edit_leaves_the_file_alone(tmp_path):
    path = tmp_path / "repropack.toml"
    path.write_text(COMMENTED)

    def change(doc):
        doc["steps"][0]["outputs"] = ["/etc/passwd"]

    with pytest.raises(ManifestErrors) as info:
        edit_manifest(path, change)
    assert info.value.path == path and info.value.key == "steps[0].outputs[0]"
    assert path.read_text() == COMMENTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repropack.toml"]
