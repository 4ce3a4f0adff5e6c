"""Byte-identical inputs give a byte-identical archive: whatever the umask, time zone, locale,
file order and times, ownership or number of zstd threads of the packing machine."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

FILES = {"b/z.txt": b"zed\n" * 1000, "a.txt": b"alpha\n", "b/run.sh": b"#!/bin/sh\necho hi\n",
         "\u00e9t\u00e9/donn\u00e9es.csv": b"x,y\n1,2\n", "big.bin": os.urandom(3 << 20)}

PACK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from repropack.archive.writer import tree_sources, write_archive
    root, out, threads = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    with out.open("wb") as handle:
        write_archive(handle, tree_sources(root, "project", "project"), threads=threads)
""")


def make_tree(root, order, umask, mtime):
    old = os.umask(umask)
    try:
        for rel in order:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(FILES[rel])
            if rel.endswith(".sh"):
                path.chmod(0o700 if umask == 0o077 else 0o755)
            os.utime(path, (mtime, mtime))
        (root / "link").symlink_to("a.txt")
    finally:
        os.umask(old)


def pack(root, out, threads, env):
    subprocess.run([sys.executable, "-c", PACK, str(root), str(out), str(threads)], check=True,
                   env={**os.environ, **env})
    return out.read_bytes()


def test_two_copies_two_machines_one_archive(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    make_tree(first, sorted(FILES), 0o022, 1_000_000_000)
    make_tree(second, sorted(FILES, reverse=True), 0o077, 1_700_000_000)
    if os.geteuid() == 0:
        for path in second.rglob("*"):
            os.lchown(path, 1234, 5678)
    a = pack(first, tmp_path / "a.tar.zst", 1, {"TZ": "UTC", "LC_ALL": "C"})
    b = pack(second, tmp_path / "b.tar.zst", 2, {"TZ": "Pacific/Chatham", "LC_ALL": "C.UTF-8", "LANG": "tr_TR.UTF-8"})
    assert a == b


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_the_bytes(tmp_path, threads):
    root = tmp_path / "p"
    make_tree(root, sorted(FILES), 0o022, 0)
    assert pack(root, tmp_path / "x", threads, {}) == pack(root, tmp_path / "y", 1, {})


def test_members_carry_no_machine_state(tmp_path):
    import tarfile

    import zstandard

    root = tmp_path / "p"
    make_tree(root, sorted(FILES), 0o022, 1_234_567_890)
    data = pack(root, tmp_path / "a", 2, {})
    with zstandard.ZstdDecompressor().stream_reader(data) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        infos = list(tar)
    names = [i.name for i in infos]
    assert names[0] == "repropack-archive.json" and names[-1] == "INDEX.json"
    assert names[1:-1] == sorted(names[1:-1], key=lambda n: n.encode())
    for info in infos:
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")
        assert info.mode in (0o644, 0o755, 0o777)
    assert next(i for i in infos if i.name == "project/b/run.sh").mode == 0o755
