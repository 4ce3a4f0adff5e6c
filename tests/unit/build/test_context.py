"""Which files go into the workflow layer."""

from __future__ import annotations

import os

import pytest

from repropack.build.context import IgnoreRules, collect, is_secret


@pytest.fixture
def project(tmp_path):
    files = {
        "repropack.toml": "x",
        "scripts/count.py": "print(1)",
        "scripts/helper.py": "x",
        "scripts/notes.tmp": "scratch",
        "data/alpha.txt": "a",
        "data/beta.txt": "b",
        "results/alpha.count": "3",
        "undeclared.txt": "no",
        ".env": "TOKEN=1",
        "scripts/.env.local": "TOKEN=2",
        "data/.ssh/id_rsa": "key",
        ".aws/credentials": "k",
        "data/server.pem": "pem",
        "scripts/__pycache__/count.cpython-311.pyc": "bytecode",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_only_declared_files_without_secrets_or_outputs(project):
    ctx = collect(project, ["scripts", "data/{sample}.txt", "data", ".env", ".aws/credentials"],
                  ["results/{sample}.count"], always=["repropack.toml"])
    assert sorted(ctx.files) == [
        "data/alpha.txt", "data/beta.txt", "repropack.toml", "scripts/count.py", "scripts/helper.py", "scripts/notes.tmp",
    ]
    assert sorted(ctx.secrets) == [".aws/credentials", ".env", "data/.ssh/id_rsa", "data/server.pem", "scripts/.env.local"]
    assert any("looks like a secret" in w for w in ctx.warnings(10))


def test_dockerignore_and_repropackignore(project):
    (project / ".dockerignore").write_text("**/*.tmp\n")
    ctx = collect(project, ["scripts"])
    assert "scripts/notes.tmp" not in ctx.files and "scripts/notes.tmp" in ctx.ignored
    (project / ".repropackignore").write_text("scripts/\n!scripts/count.py\n")  # takes precedence
    ctx = collect(project, ["scripts"])
    assert sorted(ctx.files) == ["scripts/count.py"]


def test_large_files_left_out_unless_allowed(project):
    (project / "data/big.bin").write_bytes(b"x" * 2000)
    ctx = collect(project, ["data/big.bin"], size_limit=1000)
    assert ctx.large == [("data/big.bin", 2000)] and not ctx.files
    assert "--allow-large" in ctx.warnings(1000)[0]
    assert "data/big.bin" in collect(project, ["data/big.bin"], size_limit=1000, allow_large=True).files


def test_missing_declared_file_is_reported(project):
    ctx = collect(project, ["scripts/absent.py", "results/{s}.count"], ["results/{s}.count"])
    assert ctx.missing == ["scripts/absent.py"]


def test_link_out_of_project_refused(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("s")
    os.symlink(outside, project / "scripts/link.txt")
    assert "scripts/link.txt" not in collect(project, ["scripts"]).files


def test_escaping_patterns_take_nothing(project):
    assert not collect(project, ["../*", "/etc/passwd"]).files


@pytest.mark.parametrize("path,secret", [
    (".env", True), ("a/.env.prod", True), (".ssh/config", True), ("x/.aws/credentials", True), ("k.pem", True),
    ("id_rsa", True), ("env.py", False), ("scripts/aws.py", False), ("pem.txt", False),
])
def test_is_secret(path, secret):
    assert is_secret(path) is secret


def test_ignore_rules_last_match_wins():
    rules = IgnoreRules(["*.log", "!keep.log", "# comment", "/build", "docs/**/draft*"])
    assert rules.ignored("a.log") and not rules.ignored("keep.log")
    assert rules.ignored("build/x.py") and not rules.ignored("src/build.py")
    assert rules.ignored("docs/a/b/draft1.md") and rules.ignored("docs/draft.md")
