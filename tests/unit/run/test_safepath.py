"""The safe-path walker: no link followed out of the project, in any component."""

from __future__ import annotations

import os

import pytest

from repropack.run import safepath
from repropack.run.safepath import ProjectTree, UnsafePath
from repropack.run.statefiles import check_state, open_state


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


@pytest.fixture(params=["openat2", "walk"], autouse=True)
def beneath_mode(request, monkeypatch):
    """Every test twice: with openat2, and with the component walk used where the kernel lacks it."""
    if request.param == "walk":
        monkeypatch.setattr(safepath, "_libc", False)
    return request.param


@pytest.mark.parametrize("rel", ["", ".", "..", "/etc", "a//b", "a/./b", "a/../b", "out/"])
def test_unnormalised_paths_are_refused(tree, rel):
    t, _ = tree
    with pytest.raises(UnsafePath, match="not a normalised path"):
        t.lstat(rel)


@pytest.mark.parametrize("link", ["out/sub", "out/rel"])
def test_a_link_leading_outside_at_an_intermediate_component_is_refused_naming_it(tree, link):
    t, victim = tree
    for op in (t.remove, t.makedirs, t.lstat, lambda rel: t.open_file(rel, os.O_RDONLY),
               lambda rel: t.rename("data/x", rel), lambda rel: t.open_dir(rel, create=True)):
        with pytest.raises(UnsafePath, match=f"{link} is a symbolic link .* leading outside the project"):
            op(f"{link}/f")
    assert (victim / "f").read_text() == "precious"
    assert sorted(os.listdir(victim)) == ["f"]


def test_links_that_stay_inside_are_followed(tree):
    t, _ = tree
    t.makedirs("out/inside/new/deeper")
    assert (t.root / "data/new/deeper").is_dir()
    t.rename("data/x", "out/inside/new/x")
    assert (t.root / "data/new/x").read_text() == "x"
    assert t.lstat("out/inside/new/x").st_size == 1


@pytest.mark.parametrize("link", ["out/sub", "out/rel", "out/inside"])
def test_strict_trees_refuse_every_link(tree, link):
    t, victim = tree
    with ProjectTree(t.root, strict=True) as strict:
        for op in (strict.remove, strict.makedirs, strict.lstat, lambda rel: strict.open_file(rel, os.O_RDONLY)):
            with pytest.raises(UnsafePath, match=f"{link} is a symbolic link"):
                op(f"{link}/f")
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


def test_open_dir_refuses_a_link_leading_outside_as_the_last_component(tree):
    t, _ = tree
    with pytest.raises(UnsafePath, match="out/sub is a symbolic link .* leading outside"):
        t.open_dir("out/sub", create=True)


def test_state_files_refuse_links_and_non_regular_files(tree):
    t, victim = tree
    (t.root / ".repropack").mkdir()
    os.symlink(victim / "f", t.root / ".repropack/journal.jsonl")
    with pytest.raises(UnsafePath, match=r"^\.repropack/journal.jsonl is a symbolic link \(to .*victim/f\)"):
        open_state(t.root / ".repropack/journal.jsonl", os.O_WRONLY | os.O_APPEND)
    with pytest.raises(UnsafePath, match="journal.jsonl is a symbolic link"):
        check_state(t.root)
    os.unlink(t.root / ".repropack/journal.jsonl")
    os.mkfifo(t.root / ".repropack/journal.jsonl")
    with pytest.raises(UnsafePath, match="journal.jsonl is not a regular file"):
        open_state(t.root / ".repropack/journal.jsonl", os.O_RDONLY)
    assert (victim / "f").read_text() == "precious"


def test_a_state_folder_that_is_a_link_is_refused(tree):
    t, victim = tree
    os.symlink(victim, t.root / ".repropack")
    with pytest.raises(UnsafePath, match=r"^\.repropack is a symbolic link"):
        check_state(t.root)
    with pytest.raises(UnsafePath, match=r"^\.repropack/run.lock: \.repropack is a symbolic link"):
        open_state(t.root / ".repropack/run.lock", os.O_RDWR | os.O_CREAT)
    assert sorted(os.listdir(victim)) == ["f"]


def test_state_files_are_made_with_their_folders(tree):
    t, _ = tree
    os.close(open_state(t.root / ".repropack/cache/filehash.json", os.O_WRONLY | os.O_CREAT))
    assert (t.root / ".repropack/cache/filehash.json").is_file()
    check_state(t.root)


def test_rmtree_does_not_follow_links_inside_the_folder(tree):
    t, victim = tree
    t.makedirs("d/e")
    os.symlink(victim, t.root / "d/e/link")
    t.remove("d")
    assert (victim / "f").read_text() == "precious"


def test_stat_beneath_follows_links_that_stay_inside(tree):
    t, _ = tree
    assert t.stat_beneath("out/inside/x").st_size == 1


@pytest.mark.parametrize("rel", ["out/sub/f", "out/rel/f", "out/sub"])
def test_stat_beneath_refuses_links_leading_outside(tree, rel):
    t, _ = tree
    with pytest.raises(UnsafePath, match="outside the project"):
        t.stat_beneath(rel)


def test_stat_beneath_missing_is_file_not_found(tree):
    t, _ = tree
    with pytest.raises(FileNotFoundError):
        t.stat_beneath("data/nothing")
