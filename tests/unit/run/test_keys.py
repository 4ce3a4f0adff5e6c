import json
import os
import shutil

from hypothesis import given, settings
from hypothesis import strategies as st

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
    assert _parts(order=["a"]).key != base
    assert _parts(outputs=["b"]).key != base
    assert _parts(cpus=2).key != base
    assert _parts(env={"FOO": "hmac-sha256:" + "0" * 64}).key != base


def test_defect04_input_order_and_outputs_are_in_the_key():
    two = {"a": "1" * 64, "b": "2" * 64}
    ab, ba = _parts(inputs=two, order=["a", "b"]), _parts(inputs=two, order=["b", "a"])
    assert ab.key != ba.key
    assert change_reasons(ab.to_record(), ba) == ["changed input order"]
    assert _parts(inputs=two, order=["a", "a", "b"]).key != ab.key  # a repeated input reaches the list twice
    one, other = _parts(outputs=["x", "y"]), _parts(outputs=["y", "x"])
    assert one.key != other.key and change_reasons(one.to_record(), other) == ["changed outputs"]
    assert change_reasons(_parts(cpus=1).to_record(), _parts(cpus=4)) == ["changed cpus"]


def test_defect12_env_digests_are_in_the_key_and_named_in_reasons():
    old = _parts(env={"A": "hmac-sha256:1", "B": "unset"}).to_record()
    new = _parts(env={"A": "hmac-sha256:2", "B": "unset", "C": "unset"})
    assert change_reasons(old, new) == ["changed env A", "changed env C"]
    assert change_reasons({**old, "env": "garbage"}, new) == ["changed env A", "changed env B", "changed env C"]


def test_change_reasons_name_what_changed():
    old = _parts().to_record()
    assert change_reasons(None, _parts()) == ["new"]
    assert change_reasons(old, _parts(key_material="other")) == ["changed command"]
    assert change_reasons(old, _parts(environment="e2")) == ["changed environment"]
    assert change_reasons(old, _parts(inputs={"a": "9" * 64})) == ["changed input a"]
    assert change_reasons(old, _parts(sources={"s.py": "9" * 64})) == ["changed source s.py"]
    assert change_reasons(old, _parts(params={"x": 5})) == ["changed params"]
    assert change_reasons(old, _parts()) == []


def test_scheme_of_recorded_keys():
    assert keys.scheme_of("k1:abc") == "k1"
    assert keys.scheme_of(_parts().key) == f"k{keys.KEY_SCHEME}"
    assert keys.scheme_of(None) == keys.scheme_of("abc") == keys.scheme_of(5) == ""


def test_large_input_sets_keep_only_the_aggregate():
    many = {f"f{i}": "0" * 64 for i in range(keys.DETAIL_LIMIT + 1)}
    parts = _parts(inputs=many)
    assert parts.files == {}
    assert change_reasons(parts.to_record(), _parts(inputs={**many, "f0": "1" * 64})) == ["changed input"]


class CountingHash:
    def __init__(self, monkeypatch):
        self.calls = 0
        # the hash cache reads through run.checksums.sha256_beneath, which hashes with sha256_files
        from repropack.run import checksums

        real = checksums.sha256_files

        def counting(paths, **kw):
            self.calls += len(paths)
            return real(paths, **kw)

        monkeypatch.setattr(checksums, "sha256_files", counting)


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


def test_defect12_same_size_edit_with_mtime_restored_is_rehashed(tmp_path):
    path = tmp_path / "x"
    path.write_text("aaaa")
    cache = FileHashCache(tmp_path)
    first = cache.digest("x")
    st = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(b"bbbb")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_ino == st.st_ino and os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert cache.digest("x") != first  # the ctime moved: the stamp no longer matches


def test_defect12_rehash_trusts_only_digests_of_this_process(tmp_path, monkeypatch):
    (tmp_path / "x").write_text("one")
    cache = FileHashCache(tmp_path)
    cache.digest("x")
    cache.save()
    counter = CountingHash(monkeypatch)
    assert FileHashCache(tmp_path).digest("x") and counter.calls == 0
    rehash = FileHashCache(tmp_path, rehash=True)
    rehash.digest("x")
    rehash.digest("x")
    assert counter.calls == 1  # read again once, then trusted for the rest of the run


def test_remember_takes_the_ctime_of_a_renamed_output(tmp_path, monkeypatch):
    (tmp_path / "tmp").write_text("out")
    before = os.stat(tmp_path / "tmp")
    os.replace(tmp_path / "tmp", tmp_path / "out")
    cache = FileHashCache(tmp_path)
    cache.remember("out", "f" * 64, before)
    counter = CountingHash(monkeypatch)
    assert cache.digest("out") == "f" * 64 and counter.calls == 0


def test_a_cache_of_the_old_format_costs_one_rehash(tmp_path):
    (tmp_path / "x").write_text("one")
    st = os.stat(tmp_path / "x")
    store = tmp_path / ".repropack" / "cache" / "filehash.json"
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"version": 1, "entries": {"x": [st.st_size, st.st_mtime_ns, st.st_ino, "0" * 64]}}))
    assert FileHashCache(tmp_path).digest("x") != "0" * 64


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab/._-é", min_size=1, max_size=6), min_size=1, max_size=6), st.randoms())
def test_defect04_the_key_follows_the_input_sequence(paths, rnd):
    digests = {p: keys.sha256_text(p) for p in paths}
    shuffled = list(paths)
    rnd.shuffle(shuffled)
    same = _parts(inputs=digests, order=paths).key == _parts(inputs=digests, order=shuffled).key
    assert same == (shuffled == paths)
    assert _parts(inputs=digests, order=paths).key == _parts(inputs=dict(reversed(digests.items())), order=paths).key
