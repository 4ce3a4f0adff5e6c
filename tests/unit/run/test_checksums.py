import hashlib
import os

import pytest
from repropack.errors import VerifyError
from repropack.run.checksums import (
    StreamHasher,
    format_checksums,
    parse_checksums,
    sha256_file,
    sha256_files,
)


@pytest.mark.parametrize("size", [0, 1, 4095, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) + 1])
def test_sha256_file_matches_hashlib(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sha256_files_keeps_order_with_big_and_small_files(tmp_path):
    blobs = [os.urandom(n) for n in (10, 2 << 20, 0, 600_000, 5)]
    paths = []
    for i, blob in enumerate(blobs):
        p = tmp_path / f"f{i}"
        p.write_bytes(blob)
        paths.append(p)
    expected = [hashlib.sha256(b).hexdigest() for b in blobs]
    assert sha256_files(paths, workers=4) == expected
    assert sha256_files(paths, workers=1) == expected


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        sha256_files([tmp_path / "nope"])


def test_stream_hasher_counts_and_digests():
    h = StreamHasher()
    h.update(b"abc")
    h.update(memoryview(b"def"))
    assert h.size == 6
    assert h.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_checksum_lines_round_trip_including_odd_names():
    entries = {"results/a.txt": "a" * 64, "weird\nname": "b" * 64, "back\\slash": "c" * 64, "sp ace": "d" * 64}
    text = format_checksums(entries)
    assert "a" * 64 + "  results/a.txt\n" in text
    assert parse_checksums(text) == entries


def test_parse_accepts_sha256sum_output_and_binary_marker(tmp_path):
    (tmp_path / "x").write_bytes(b"hello\n")
    import subprocess

    out = subprocess.run(["sha256sum", "x"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert parse_checksums(out) == {"x": hashlib.sha256(b"hello\n").hexdigest()}
    out_b = subprocess.run(["sha256sum", "-b", "x"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert parse_checksums(out_b) == {"x": hashlib.sha256(b"hello\n").hexdigest()}


@pytest.mark.parametrize("line", ["nothex  file", "abc file", "z" * 64 + "  file", "a" * 64])
def test_parse_rejects_garbage_with_line_number(line):
    with pytest.raises(VerifyError, match=r"list:1"):
        parse_checksums(line + "\n", source="list")
