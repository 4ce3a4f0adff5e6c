"""Unit tests of repropack.paths: one spelling per file, and what an output may never be."""

from __future__ import annotations

import os
import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.paths import is_normal, link_escape, nested, normalize, path_problem, protected_problem, rendered_problem


@pytest.mark.parametrize("given, normal", [
    ("data/x.txt", "data/x.txt"), ("./data//x.txt", "data/x.txt"), ("a/./b/.", "a/b"), (".", ""), ("./", ""),
    ("a//", "a/"), ("a/b/", "a/b/"), ("...", "..."), (".hidden/x", ".hidden/x"), ("sp ace/ü", "sp ace/ü"),
])
def test_normalize(given, normal):
    assert normalize(given) == normal
    assert normalize(normal) == normal  # idempotent
    assert is_normal(normal.rstrip("/")) == bool(normal)


@pytest.mark.parametrize("path, word", [
    ("", "empty"), ("/etc/passwd", "absolute"), ("~/x", "absolute"), ("C:\\x", "absolute"), ("a\\b", "backslash"),
    ("a\nb", "control"), ("a\rb", "control"), ("a\0b", "control"), ("..", "'..'"), ("a/../b", "'..'"), ("a/..", "'..'"),
])
def test_path_problem(path, word):
    assert word in path_problem(path)


@pytest.mark.parametrize("path", ["a", "a/b.txt", "...", "a..b", ".x", "a b", "$(x)", "ü/ß"])
def test_path_problem_accepts(path):
    assert path_problem(path) is None and rendered_problem(path) is None


@pytest.mark.parametrize("path, word", [
    ("", "project folder"), ("repropack.toml", "is the manifest"), ("repropack.toml/x", "inside the manifest"),
    ("repropack.lock", "is the lock file"), ("locks", "is the lock folder"), ("locks/a.lock", "inside the lock folder"),
    (".repropack", "is repropack's state"), (".repropack/journal.jsonl", "inside repropack's state"),
])
def test_protected(path, word):
    assert word in protected_problem(path)
    assert word in rendered_problem("./" + path + ("/" if path else ""))


@pytest.mark.parametrize("path", ["repropack.toml.bak", "locksmith/x", "x/.repropack", "x/repropack.toml", "lock"])
def test_protected_only_at_the_top(path):
    assert protected_problem(path) is None


def test_nested_finds_every_folder_output_with_an_output_inside():
    assert sorted(nested(["out", "out/f", "out/g/h", "a/b/c", "a/b", "x", "xy/z", "x.y"])) == [
        ("a/b/c", "a/b"), ("out/f", "out"), ("out/g/h", "out")]
    assert list(nested(["a", "ab", "a.b", "b/a"])) == []


def test_link_escape(tmp_path):
    root, outside = tmp_path / "p", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    os.symlink("real", root / "inside")  # a sibling inside the project: fine
    os.symlink(outside, root / "away")
    os.symlink("../../outside", root / "real" / "up")
    os.symlink("/etc/passwd", root / "file")
    assert link_escape(root, "inside/x") is None
    assert link_escape(root, "away/x") == "away"
    assert link_escape(root, "real/up/deeper/x") == "real/up"
    assert link_escape(root, "file") == "file"
    assert link_escape(root, "file", last=False) is None  # the last component is left to the caller
    assert link_escape(root, "missing/x") is None
    cache: dict = {}
    assert link_escape(root, "away/a", cache) == "away" and link_escape(root, "away/b", cache) == "away"


SEGMENTS = st.sampled_from(["a", "b", ".", "", "..", "ü", "sp ace", "...", ".x", "$(x)"])


@settings(max_examples=300, derandomize=True, database=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join))
def test_normalize_property(path):
    """One spelling per file: idempotent, no empty or '.' segment, the file system's own reading of the path."""
    problem = path_problem(path)
    if problem:
        assert path == "" or ".." in path.split("/") or path.startswith("/")
        return
    normal = normalize(path)
    assert normalize(normal) == normal
    assert normal.rstrip("/") == "" or is_normal(normal.rstrip("/"))
    assert posixpath.normpath(path) == (normal.rstrip("/") or ".")
    if rendered_problem(path) is None:
        assert normal and normal.split("/")[0] not in ("repropack.toml", "repropack.lock", "locks", ".repropack")
