"""The safe-path walker: no link followed out of the project, in any component."""

from __future__ import annotations

import os

import pytest

from repropack.run import safepath
from repropack.run.safepath import ProjectTree, UnsafePath


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "p"
    victim = tmp_path / "victim"
    (root / "out").mkdir(parents=True)
    victim.mkdir()
    (victim / "f").write_text("precious")
    (root / "out" / "sub").symlink_to(victim)
    (root / "out" / "rel").symlink_to("../../victim")
    (root / "out" / "inside").symlink_to("../data")
    (root / "data").mkdir()
    (root / "data" / "x").write_text("x")
    (root / "file").write_text("f")
    with ProjectTree(root) as t:
        yield t, victim


@pytest.fixture(params=["openat2", "walk"])
def beneath_mode(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(safepath, "_libc", False)
    return request.param


@pytest.mark.parametrize("rel", ["", ".", "..", "/etc", "a//b", "a/./b", "a/../b", "out/"])
def test_unnormalised_paths_are_refused(tree, rel):
    t, _ = tree
    with pytest.raises(UnsafePath, match="not a normalised path"):
        t.lstat(rel)


@pytest.mark.parametrize("link", ["out/sub", "out/rel", "out/inside"])
def test_a_link_at_an_intermediate_component_is_refused_naming_it(tree, link):
    t, victim = tree
    for op in (t.remove, t.makedirs, t.lstat, lambda rel: t.open_file(rel, os.O_RDONLY)):
        with pytest.raises(UnsafePath, match=f"{link} is a symbolic link"):
            op(f"{link}/f")
    assert (victim / "f").read_text() == "precious"
    assert sorted(os.listdir(victim)) == ["f"]


def test_a_link_as_the_final_component_is_removed_itself_not_its_target(tree):
    t, victim = tree
    t.remove("out/sub")
    assert not os.path.lexists(t.root / "out/sub")
    assert (victim / "f").read_text() == "precious"


def test_a_file_where_a_directory_is_needed_is_refused(tree):
    t, _ = tree
    with pytest.raises(UnsafePath, match="file is not a directory"):
        t.makedirs("file/x")


def test_makedirs_remove_rename_inside(tree):
    t, _ = tree
    t.makedirs("a/b/c")
    assert (t.root / "a/b/c").is_dir()
    (t.root / "a/b/c/f").write_text("1")
    t.rename("a/b/c/f", "z/y/f")
    assert (t.root / "z/y/f").read_text() == "1"
    t.remove("a")
    assert not (t.root / "a").exists()
    t.remove("a/never/there")  # missing is fine


def test_open_dir_refuses_a_link_as_the_last_component(tree):
    t, _ = tree
    with pytest.raises(UnsafePath, match="out/sub is a symbolic link"):
        t.open_dir("out/sub", create=True)


def test_open_file_refuses_links_and_non_regular_files(tree):
    t, victim = tree
    os.symlink(victim / "f", t.root / "state")
    with pytest.raises(UnsafePath, match="state is a symbolic link"):
        t.open_file("state", os.O_WRONLY | os.O_APPEND)
    os.mkfifo(t.root / "fifo")
    with pytest.raises(UnsafePath, match="fifo is not a regular file"):
        t.open_file("fifo", os.O_RDONLY)
    assert (victim / "f").read_text() == "precious"


def test_rmtree_does_not_follow_links_inside_the_folder(tree):
    t, victim = tree
    t.makedirs("d/e")
    os.symlink(victim, t.root / "d/e/link")
    t.remove("d")
    assert (victim / "f").read_text() == "precious"


def test_stat_beneath_follows_links_that_stay_inside(tree, beneath_mode):
    t, _ = tree
    assert t.stat_beneath("out/inside/x").st_size == 1


@pytest.mark.parametrize("rel", ["out/sub/f", "out/rel/f", "out/sub"])
def test_stat_beneath_refuses_links_leading_outside(tree, beneath_mode, rel):
    t, _ = tree
    with pytest.raises(UnsafePath, match="outside the project"):
        t.stat_beneath(rel)


def test_stat_beneath_missing_is_file_not_found(tree, beneath_mode):
    t, _ = tree
    with pytest.raises(FileNotFoundError):
        t.stat_beneath("data/nothing")
