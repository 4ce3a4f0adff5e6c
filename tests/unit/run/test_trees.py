"""Folder outputs: links inside are recorded by their target, never followed; links out are refused."""

from __future__ import annotations

import os

from repropack.run.trees import tree_digest, tree_entries, tree_problem


def _tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "a").write_text("a\n")
    (tree / "d" / "c").write_text("a\n")
    return tree


def test_entries_list_links_without_following_them(tmp_path):
    tree = _tree(tmp_path)
    os.symlink("d", tree / "dirlink")
    os.symlink("d/a", tree / "filelink")
    files, links = tree_entries(tree)
    assert files == ["d/a", "d/c"] and links == {"dirlink": "d", "filelink": "d/a"}
    assert tree_problem(tree, "out/tree") is None


def test_a_retargeted_link_changes_the_digest_though_the_content_behind_it_is_equal(tmp_path):
    tree = _tree(tmp_path)
    os.symlink("d/a", tree / "b")
    first = tree_digest(tree)
    os.remove(tree / "b")
    os.symlink("d/c", tree / "b")
    assert tree_digest(tree) != first
    os.remove(tree / "b")
    (tree / "b").write_text("a\n")  # a copy is not a link
    assert tree_digest(tree) != first


def test_links_leading_out_of_the_folder_are_named(tmp_path):
    tree = _tree(tmp_path)
    (tmp_path / "beside").write_text("x")
    for name, target, word in (("abs", "/etc/passwd", "absolute"), ("up", "../beside", "outside the folder"),
                               ("gone", "nothing-here", "does not exist"), ("loop", "loop", "does not exist"),
                               ("deep", "d/../../beside", "outside the folder")):
        os.symlink(target, tree / name)
        problem = tree_problem(tree, "out/tree")
        assert problem is not None and problem.startswith(f"out/tree/{name} ") and word in problem, problem
        os.remove(tree / name)
    assert tree_problem(tree, "out/tree") is None
