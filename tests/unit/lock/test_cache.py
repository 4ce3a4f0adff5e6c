import hashlib
from pathlib import Path

import pytest

from repropack.errors import FetchError
from repropack.lock.cache import CACHE_ENV, ArtifactCache, cache_root


def test_cache_root_override(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_root() == (tmp_path / "c").resolve()
    monkeypatch.delenv(CACHE_ENV)
    assert "repropack" in str(cache_root())


def test_store_verifies_while_streaming_and_keeps_nothing_on_mismatch(tmp_path: Path):
    cache = ArtifactCache(tmp_path)
    data = b"hello" * 1000
    good = hashlib.sha256(data).hexdigest()
    path = cache.store(good, "x-1.whl", [data[:10], data[10:]], label="x 1")
    assert path.read_bytes() == data and cache.lookup(good, "x-1.whl") == path
    wrong = "0" * 64
    with pytest.raises(FetchError) as info:
        cache.store(wrong, "y-1.whl", [data], label="y 1")
    assert info.value.mismatch.expected == wrong and info.value.mismatch.actual == good
    assert "y 1" in str(info.value) and wrong in str(info.value) and good in str(info.value)
    assert not any(p.is_file() for p in cache.path_for(wrong, "y-1.whl").parent.glob("*"))


def test_interrupted_stream_leaves_no_partial_file(tmp_path: Path):
    cache = ArtifactCache(tmp_path)

    def chunks():
        yield b"abc"
        raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        cache.store("1" * 64, "z.conda", chunks(), label="z")
    assert list(cache.path_for("1" * 64, "z.conda").parent.iterdir()) == []


def test_corrupt_entry_is_detected_and_removed(tmp_path: Path):
    cache = ArtifactCache(tmp_path)
    data = b"payload"
    digest = hashlib.sha256(data).hexdigest()
    path = cache.store(digest, "p.tar.bz2", [data], label="p")
    path.write_bytes(b"payloaD")
    assert cache.lookup(digest, "p.tar.bz2") is None
    assert not path.exists()


def test_file_names_cannot_escape(tmp_path: Path):
    with pytest.raises(FetchError):
        ArtifactCache(tmp_path).path_for("a" * 64, "../evil")
