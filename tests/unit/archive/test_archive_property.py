"""Property: whatever member list an archive holds, unpack either refuses it and leaves nothing, or
writes only regular files and inside-pointing links beneath the target, each with its content."""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from pathlib import Path

from archivekit import craft, member
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repropack.archive.unpack import unpack
from repropack.errors import ArchiveError

COMPONENT = st.sampled_from(["a", "b", "..", ".", "", "c.txt", "link", "/"])
NAME = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join)
KIND = st.sampled_from(["file", "file", "file", "symlink", "hardlink", "fifo", "dir", "setuid"])
TARGET = st.sampled_from(["a", "../a", "../../outside", "/tmp", "b/c.txt", ".", "link/..", "a/../..", "../../../x",
                          "a/b/link/../../..", "link/../../.."])
MEMBER = st.tuples(NAME, KIND, TARGET, st.binary(max_size=20))


def build(spec):
    name, kind, target, data = spec
    if kind == "symlink":
        return member(name, type=tarfile.SYMTYPE, linkname=target)
    if kind == "hardlink":
        return member(name, type=tarfile.LNKTYPE, linkname=target)
    if kind == "fifo":
        return member(name, type=tarfile.FIFOTYPE)
    if kind == "dir":
        return member(name, type=tarfile.DIRTYPE)
    return member(name, data, mode=0o4755 if kind == "setuid" else 0o644)


@settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MEMBER, min_size=1, max_size=6))
def test_unpack_never_writes_outside_or_leaves_a_refused_archive(specs):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        outside = base / "outside"
        outside.mkdir()
        (outside / "keep").write_text("keep")
        members = [build(spec) for spec in specs]
        archive = craft(base / "a.tar.zst", members)
        target = base / "out"
        try:
            unpack(archive, target)
        except ArchiveError:
            assert not target.exists()
        else:
            expected = {info.name: data for info, data in members}
            for path in target.rglob("*"):
                rel = path.relative_to(target).as_posix()
                mode = os.lstat(path).st_mode
                assert stat.S_ISDIR(mode) or rel in expected, rel
                if stat.S_ISLNK(mode):
                    inside = str(target.resolve()) + os.sep
                    assert os.path.realpath(path).startswith(inside) or os.path.realpath(path) == inside[:-1]
                elif stat.S_ISREG(mode):
                    assert path.read_bytes() == expected[rel] and not mode & (stat.S_ISUID | stat.S_ISGID)
                else:
                    assert stat.S_ISDIR(mode), rel
        assert sorted(os.listdir(outside)) == ["keep"] and (outside / "keep").read_text() == "keep"
        assert sorted(os.listdir(base)) in (["a.tar.zst", "out", "outside"], ["a.tar.zst", "outside"])
