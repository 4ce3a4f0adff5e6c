"""Looking many cache entries up at once, and data derived from an entry kept beside it."""

import hashlib
from pathlib import Path

from repropack.lock.cache import ArtifactCache


def _entry(cache: ArtifactCache, data: bytes, name: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    cache.store(digest, name, [data], label=name)
    return digest


def test_lookup_many_keeps_order_and_drops_corrupt_entries(tmp_path: Path):
    cache = ArtifactCache(tmp_path)
    good = [_entry(cache, f"package {i}".encode() * 5000, f"p{i}.conda") for i in range(5)]
    corrupt = _entry(cache, b"will be damaged", "bad.conda")
    cache.path_for(corrupt, "bad.conda").write_bytes(b"damaged on disk")
    asked = [(good[0], "p0.conda"), ("f" * 64, "missing.conda"), (corrupt, "bad.conda"),
             *((d, f"p{i}.conda") for i, d in enumerate(good) if i)]
    found = cache.lookup_many(asked)
    assert found == [cache.path_for(good[0], "p0.conda"), None, None,
                     *(cache.path_for(d, f"p{i}.conda") for i, d in enumerate(good) if i)]
    assert not cache.path_for(corrupt, "bad.conda").exists()
    assert cache.lookup_many([]) == [] and cache.lookup_many([(good[1], "p1.conda")]) == [found[3]]


def test_derived_data_is_written_whole_beside_its_entry(tmp_path: Path):
    cache = ArtifactCache(tmp_path)
    digest = _entry(cache, b"an archive", "a-1.0-0.conda")
    path = cache.store_derived(digest, "repodata-record.json", b'{"name": "a"}')
    assert path == cache.derived_path(digest, "repodata-record.json")
    assert path.parent == cache.path_for(digest, "a-1.0-0.conda").parent and path.name == ".repodata-record.json"
    assert path.read_bytes() == b'{"name": "a"}'
    assert sorted(p.name for p in path.parent.iterdir()) == [".repodata-record.json", "a-1.0-0.conda"]
    assert cache.lookup(digest, "a-1.0-0.conda") is not None  # the entry itself is unaffected
