"""Crafted hostile archives: each is refused with one ArchiveError naming the member, and unpack
leaves nothing behind (no staging folder, no target it made, nothing outside)."""

from __future__ import annotations

import os
import tarfile

import pytest
from archivekit import craft, index_for, member

from repropack.archive.safety import Limits
from repropack.archive.unpack import unpack
from repropack.errors import ArchiveError, UsageError

OK = member("project/ok.txt", b"fine\n")

HOSTILE = {
    "absolute": ([member("/tmp/evil", b"x")], "absolute path"),
    "dotdot": ([member("project/../../evil", b"x")], "'..'"),
    "dotdot-leading": ([member("../evil", b"x")], "'..'"),
    "link-absolute": ([member("project/l", type=tarfile.SYMTYPE, linkname="/etc")], "absolute"),
    "link-escape": ([member("project/l", type=tarfile.SYMTYPE, linkname="../../etc")], "outside"),
    "link-planted-then-written": ([member("project/l", type=tarfile.SYMTYPE, linkname="sub"),
                                   member("project/l/passwd", b"x")], "through the link"),
    "link-planted-to-outside-written": ([member("evil", type=tarfile.SYMTYPE, linkname="x/../.."),
                                         member("evil/f", b"x")], "outside"),
    "link-chain-escape": ([member("a/b/c/m", type=tarfile.SYMTYPE, linkname="../../../x"),
                           member("k", type=tarfile.SYMTYPE, linkname="a/b/c/m/../../..")], "through the link"),
    "link-to-link": ([member("x", type=tarfile.SYMTYPE, linkname="project"),
                      member("y", type=tarfile.SYMTYPE, linkname="x/ok.txt")], "through the link"),
    "hardlink-outside": ([member("project/h", type=tarfile.LNKTYPE, linkname="/etc/passwd")], "hard link"),
    "hardlink-inside": ([OK, member("project/h", type=tarfile.LNKTYPE, linkname="project/ok.txt")], "hard link"),
    "chardev": ([member("project/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)], "character device"),
    "blockdev": ([member("project/sda", type=tarfile.BLKTYPE)], "block device"),
    "fifo": ([member("project/fifo", type=tarfile.FIFOTYPE)], "FIFO"),
    "setuid": ([member("project/su", b"#!/bin/sh\n", mode=0o4755)], "setuid"),
    "setgid": ([member("project/sg", b"#!/bin/sh\n", mode=0o2755)], "setuid"),
    "duplicate": ([OK, member("project/ok.txt", b"other\n")], "twice"),
    "file-then-beneath": ([member("project/f", b"x"), member("project/f/g", b"y")], "beneath the file"),
    "directory-entry": ([member("project/d", type=tarfile.DIRTYPE)], "directory"),
    "nul-in-name": ([member("project/a\\b", b"x")], "backslash"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_refused_and_nothing_left(tmp_path, case):
    members, reason = HOSTILE[case]
    archive = craft(tmp_path / "a.tar.zst", [OK, *members] if members[0] is not OK else members)
    target = tmp_path / "out"
    with pytest.raises(ArchiveError, match=reason.replace("(", r"\(")) as caught:
        unpack(archive, target)
    assert caught.value.exit_code == 8
    assert not target.exists()
    assert sorted(os.listdir(tmp_path)) == ["a.tar.zst"]


def test_refused_archive_leaves_an_existing_target_as_it_was(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    archive = craft(tmp_path / "a.tar.zst", [OK, member("project/fifo", type=tarfile.FIFOTYPE)])
    with pytest.raises(ArchiveError):
        unpack(archive, target, force=True)
    assert sorted(os.listdir(target)) == ["mine.txt"]


def test_non_empty_target_needs_force(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    archive = craft(tmp_path / "a.tar.zst", [OK])
    with pytest.raises(UsageError, match="--force"):
        unpack(archive, target)
    unpack(archive, target, force=True)
    assert (target / "project" / "ok.txt").read_bytes() == b"fine\n"
    assert (target / "mine.txt").read_text() == "keep"


def test_decompression_bomb_stopped_by_the_ratio_cap(tmp_path):
    zeros = b"\0" * (64 << 20)
    archive = craft(tmp_path / "bomb.tar.zst", [member("project/zeros", zeros)])
    assert archive.stat().st_size < (1 << 20)
    with pytest.raises(ArchiveError, match="compression-ratio cap"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_size_and_member_caps(tmp_path):
    archive = craft(tmp_path / "a.tar.zst", [member(f"project/{i}", b"x" * 100) for i in range(5)])
    with pytest.raises(ArchiveError, match="size cap"):
        unpack(archive, tmp_path / "o1", limits=Limits(max_bytes=250))
    with pytest.raises(ArchiveError, match="member cap"):
        unpack(archive, tmp_path / "o2", limits=Limits(max_members=3))
    assert sorted(os.listdir(tmp_path)) == ["a.tar.zst"]


@pytest.mark.parametrize("problem", ["content", "twice", "absent", "unlisted", "truncated", "newer", "no-index",
                                     "newer-index", "not-zstd"])
def test_bad_archives_are_refused(tmp_path, problem):
    members = [OK, member("project/b.txt", b"bee\n")]
    kwargs: dict = {}
    if problem == "content":
        kwargs["index"] = index_for([OK, member("project/b.txt", b"wasp\n")])
    elif problem == "twice":
        kwargs["index"] = index_for(members, extra_entries=[index_for([OK]) and {"path": "project/ok.txt",
                                                                                   "sha256": "0" * 64, "size": 5}])
    elif problem == "absent":
        kwargs["index"] = index_for(members, extra_entries=[{"path": "project/gone", "sha256": "0" * 64, "size": 1}])
    elif problem == "unlisted":
        kwargs["index"] = index_for(members, drop=("project/b.txt",))
    elif problem == "newer":
        kwargs["marker"] = b'{"format": 99, "tool": "repropack"}'
    elif problem == "newer-index":
        kwargs["index"] = b'{"format": 99, "members": []}'
    expected = {"content": "does not match the index", "twice": "twice", "absent": "does not hold",
                "unlisted": "not listed", "truncated": "truncated", "newer": "newer than this repropack",
                "no-index": "no index", "newer-index": "newer than this repropack", "not-zstd": "zstd"}[problem]
    path = tmp_path / "a.tar.zst"
    if problem == "truncated":
        craft(path, members)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif problem == "no-index":
        import io
        import zstandard
        from repropack.archive import format as fmt

        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in [member(fmt.MARKER, fmt.marker_bytes()), OK]:
                tar.addfile(info, io.BytesIO(data))
        path.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    elif problem == "not-zstd":
        path.write_bytes(b"PK\x03\x04 a zip file, not an archive of ours" * 10)
    else:
        craft(path, members, **kwargs)
    with pytest.raises(ArchiveError, match=expected):
        unpack(path, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["a.tar.zst"]
