import os
import shutil

from repropack.run import keys
from repropack.run.keys import FileHashCache, change_reasons, make_parts


def _parts(**over):
    base = dict(key_material="python s.py a > b", environment="host", inputs={"a": "1" * 64},
                sources={"s.py": "2" * 64}, params={"x": 1})
    base.update(over)
    return make_parts(**base)


def test_key_is_stable_and_versioned():
    assert _parts().key == _parts().key
    assert _parts().key.startswith(f"k{keys.KEY_SCHEME}:")
    assert _parts(params={"x": 1, "y": 2}).key == _parts(params={"y": 2, "x": 1}).key


def test_every_part_changes_the_key():
    base = _parts().key
    assert _parts(key_material="python s.py a > c").key != base
    assert _parts(environment="sha256:x").key != base
    assert _parts(inputs={"a": "3" * 64}).key != base
    assert _parts(sources={"s.py": "3" * 64}).key != base
    assert _parts(params={"x": 2}).key != base


def test_change_reasons_name_what_changed():
    old = _parts().to_record()
    assert change_reasons(None, _parts()) == ["new"]
    assert change_reasons(old, _parts(key_material="other")) == ["changed command"]
    assert change_reasons(old, _parts(environment="e2")) == ["changed environment"]
    assert change_reasons(old, _parts(inputs={"a": "9" * 64})) == ["changed input a"]
    assert change_reasons(old, _parts(sources={"s.py": "9" * 64})) == ["changed source s.py"]
    assert change_reasons(old, _parts(params={"x": 5})) == ["changed params"]
    assert change_reasons(old, _parts()) == []


def test_large_input_sets_keep_only_the_aggregate():
    many = {f"f{i}": "0" * 64 for i in range(keys.DETAIL_LIMIT + 1)}
    parts = _parts(inputs=many)
    assert parts.files == {}
    assert change_reasons(parts.to_record(), _parts(inputs={**many, "f0": "1" * 64})) == ["changed input"]


class CountingHash:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = keys.sha256_files

        def counting(paths, **kw):
            self.calls += len(paths)
            return real(paths, **kw)

        monkeypatch.setattr(keys, "sha256_files", counting)


def test_cache_skips_unchanged_files_and_survives_a_move(tmp_path, monkeypatch):
    counter = CountingHash(monkeypatch)
    project = tmp_path / "p"
    (project / "d").mkdir(parents=True)
    (project / "d" / "x").write_text("hello")
    cache = FileHashCache(project)
    first = cache.digests(["d/x"])
    cache.save()
    assert counter.calls == 1
    assert FileHashCache(project).digests(["d/x"]) == first
    assert counter.calls == 1  # unchanged: not read again
    moved = tmp_path / "moved"
    shutil.move(project, moved)  # same inode and mtime: still no rehash
    assert FileHashCache(moved).digests(["d/x"]) == first
    assert counter.calls == 1


def test_touched_or_copied_files_are_rehashed_to_the_same_digest(tmp_path, monkeypatch):
    counter = CountingHash(monkeypatch)
    project = tmp_path / "p"
    project.mkdir()
    (project / "x").write_text("hello")
    cache = FileHashCache(project)
    first = cache.digests(["x"])
    cache.save()
    os.utime(project / "x", ns=(1, 1))
    assert FileHashCache(project).digests(["x"]) == first
    assert counter.calls == 2
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)  # new inodes and mtimes
    assert FileHashCache(copy).digests(["x"]) == first


def test_content_change_is_seen(tmp_path):
    (tmp_path / "x").write_text("one")
    cache = FileHashCache(tmp_path)
    first = cache.digest("x")
    (tmp_path / "x").write_text("two!")
    assert cache.digest("x") != first


def test_missing_files(tmp_path):
    cache = FileHashCache(tmp_path)
    assert cache.digest("nope") is None
    assert cache.digests(["nope"], missing_ok=True) == {}


def test_damaged_cache_file_is_ignored(tmp_path):
    (tmp_path / "x").write_text("one")
    store = tmp_path / ".repropack" / "cache" / "filehash.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    assert FileHashCache(tmp_path).digest("x") is not None
