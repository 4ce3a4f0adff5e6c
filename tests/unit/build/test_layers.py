"""Deterministic layer tars: same content gives the same bytes whatever the host did."""

from __future__ import annotations

import gzip
import os
import tarfile

import pytest

from repropack.build.layers import file_entries, gzip_layer, normalize_arcname, sha256_file, tree_entries, write_layer
from repropack.errors import BuildError


def _stage(root, *, umask: int, mtime: int, order: list[str]):
    old = os.umask(umask)
    try:
        (root / "pkg" / "sub").mkdir(parents=True)
        for name in order:  # creation order differs between the two stagings
            path = root / "pkg" / name
            path.write_text(f"content of {name}\n")
        (root / "pkg" / "run.sh").chmod(0o777 & ~umask)
        os.link(root / "pkg" / "a.txt", root / "pkg" / "sub" / "a-again.txt")
        os.symlink("a.txt", root / "pkg" / "link")
    finally:
        os.umask(old)
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), (mtime, mtime), follow_symlinks=False)


def test_same_content_same_bytes_despite_umask_mtime_and_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _stage(one, umask=0o022, mtime=1_000_000, order=["a.txt", "b.txt", "run.sh"])
    _stage(two, umask=0o077, mtime=1_700_000_000, order=["run.sh", "b.txt", "a.txt"])
    info1 = write_layer(tree_entries(one / "pkg", "/opt/envs/x"), tmp_path / "1.tar", epoch=42)
    info2 = write_layer(tree_entries(two / "pkg", "/opt/envs/x"), tmp_path / "2.tar", epoch=42)
    assert info1 == info2
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    assert info1.diff_id == sha256_file(tmp_path / "1.tar")
    assert info1.size == (tmp_path / "1.tar").stat().st_size


def test_entries_are_normalized(tmp_path):
    _stage(tmp_path / "s", umask=0o077, mtime=5, order=["a.txt", "b.txt", "run.sh"])
    write_layer(tree_entries(tmp_path / "s" / "pkg", "opt/envs/x"), tmp_path / "l.tar", epoch=1234)
    with tarfile.open(tmp_path / "l.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    names = list(members)
    assert names == sorted(names)
    assert names[:3] == ["opt", "opt/envs", "opt/envs/x"]
    for m in members.values():
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (1234, 0, 0, "", "")
    assert members["opt/envs/x/run.sh"].mode == 0o755
    assert members["opt/envs/x/b.txt"].mode == 0o644
    assert members["opt/envs/x/sub"].mode == 0o755
    assert members["opt/envs/x/link"].issym() and members["opt/envs/x/link"].linkname == "a.txt"
    again = members["opt/envs/x/sub/a-again.txt"]
    assert again.islnk() and again.linkname == "opt/envs/x/a.txt"


def test_hardlink_is_extractable(tmp_path):
    _stage(tmp_path / "s", umask=0o022, mtime=5, order=["a.txt", "b.txt", "run.sh"])
    write_layer(tree_entries(tmp_path / "s" / "pkg", "x"), tmp_path / "l.tar", epoch=0)
    with tarfile.open(tmp_path / "l.tar") as tar:
        tar.extractall(tmp_path / "out", filter="tar")
    assert (tmp_path / "out/x/sub/a-again.txt").read_text() == "content of a.txt\n"


def test_deterministic_gzip(tmp_path):
    (tmp_path / "f").write_text("hello\n" * 1000)
    write_layer(file_entries([("work/f", tmp_path / "f")]), tmp_path / "l.tar", epoch=0)
    d1 = gzip_layer(tmp_path / "l.tar", tmp_path / "a.tar.gz")
    os.utime(tmp_path / "l.tar", (99, 99))
    d2 = gzip_layer(tmp_path / "l.tar", tmp_path / "b.tar.gz")
    assert d1 == d2
    raw = (tmp_path / "a.tar.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # mtime 0
    assert not raw[3] & 0x08  # no FNAME
    assert gzip.decompress(raw) == (tmp_path / "l.tar").read_bytes()


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "l.tar"
    real_open = open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        return Full(fh) if "w" in mode else fh

    monkeypatch.setattr("builtins.open", fake_open)
    with pytest.raises(OSError, match="No space"):
        write_layer(file_entries([("work/f", tmp_path / "f")]), out, epoch=0)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


@pytest.mark.parametrize("bad", ["", "/", "../etc/passwd", "work/../../x"])
def test_escaping_paths_refused(bad):
    with pytest.raises(BuildError):
        normalize_arcname(bad)


def test_special_files_refused(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BuildError, match="only files, directories and symlinks"):
        file_entries([("work/fifo", tmp_path / "fifo")])
