"""Template rendering for --containerfile users: placeholders, snippets, errors naming file and line."""

from __future__ import annotations

import pytest

from repropack.build.containerfile import load_template, render, template_dir
from repropack.errors import BuildError


def test_shipped_templates_render_with_the_documented_placeholders():
    values = {"project": "q", "base": "sha256:" + "a" * 64, "env_layers": "ADD env-0.tar /", "env": 'PATH="/x"',
              "workdir": "/work", "labels": 'LABEL a="b"', "snippet": "RUN echo hi", "image": "q:1"}
    for name in ("Containerfile", "apptainer.def"):
        path = template_dir() / name
        text = render(path, path.read_text(), values)
        assert "$" not in text.replace("$$", "")
    containerfile = render(template_dir() / "Containerfile", (template_dir() / "Containerfile").read_text(), values)
    assert containerfile.splitlines()[3] == f"FROM sha256:{'a' * 64}"
    assert "RUN echo hi" in containerfile and "ADD workflow.tar /" in containerfile


def test_project_template_overrides_the_shipped_one(tmp_path):
    (tmp_path / "Containerfile.in").write_text("FROM $base\n")
    path, text = load_template(tmp_path, "Containerfile")
    assert path == tmp_path / "Containerfile.in" and text == "FROM $base\n"


def test_bad_placeholder_names_file_line_and_column(tmp_path):
    path = tmp_path / "Containerfile.in"
    with pytest.raises(BuildError, match=rf"{path}:3:5: invalid placeholder"):
        render(path, "FROM $base\n# ok\nRUN $(true)\n", {"base": "x"})


def test_unknown_placeholder_names_file_and_line(tmp_path):
    path = tmp_path / "Containerfile.in"
    with pytest.raises(BuildError, match=rf"{path}:2: unknown placeholder \$basee \(known: base\)"):
        render(path, "# first\nFROM ${basee}\n", {"base": "x"})


def test_dollar_dollar_is_a_literal_dollar(tmp_path):
    assert render(tmp_path / "t", "RUN echo $$HOME $base\n", {"base": "x"}) == "RUN echo $HOME x\n"
