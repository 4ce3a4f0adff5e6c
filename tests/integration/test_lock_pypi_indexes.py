"""Index order of the PyPI side against two local PEP 503 indexes (no network).

The manifest promises that each package comes from the first index in ``indexes`` that
has it: a package name planted on a later index (dependency confusion) must never win.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from _lockhelp import Server, manifest

from repropack.lock import fetch, lock_project
from repropack.lock.cache import ArtifactCache
from repropack.lock.solve_pypi import read_pylock


def _wheel(dist: Path, name: str, version: str, marker: str) -> Path:
    """A minimal pure-Python wheel whose content carries ``marker`` (so two wheels differ)."""
    dist.mkdir(parents=True, exist_ok=True)
    path = dist / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"WHERE = {marker!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for n, text in {**files, f"{info}/RECORD": record}.items():
            zf.writestr(n, text)
    return path


def _index(root: Path, wheels: dict[str, list[Path]]) -> None:
    """A PEP 503 simple index: /simple/<name>/index.html linking /files/<wheel>#sha256=..."""
    for name, paths in wheels.items():
        page = root / "simple" / name / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="/files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">{p.name}</a>\n'
                        for p in paths)
        page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_defect05_first_index_wins_and_fetch_uses_its_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    a_root, b_root = tmp_path / "A", tmp_path / "B"
    shared_a = _wheel(a_root / "files", "shared", "1.0", "A")
    # B serves the same name with a newer version (a dependency-confusion plant) and a package only it has.
    shared_b = _wheel(b_root / "files", "shared", "2.0", "B")
    only_b = _wheel(b_root / "files", "onlyb", "1.0", "B")
    _index(a_root, {"shared": [shared_a]})
    _index(b_root, {"shared": [shared_b], "onlyb": [only_b]})
    with Server(a_root) as a, Server(b_root) as b:
        env = {"python": "3.11", "pip": ("shared", "onlyb"), "indexes": (f"{a.url}/simple", f"{b.url}/simple")}
        m = manifest(tmp_path / "p", {"default": env})
        lockset = lock_project(m).lockset
        text = (m.root / "locks/default/pylock.linux-64.toml").read_text()
        locked = {p.name: p for p in read_pylock(text, "linux-64")}
        assert set(locked) == {"shared", "onlyb"}
        assert (locked["shared"].version, locked["shared"].sha256) == ("1.0", _sha(shared_a))
        assert locked["shared"].url.startswith(a.url + "/")
        # The neighbour: a name only the second index has still resolves, from that index.
        assert locked["onlyb"].url.startswith(b.url + "/") and locked["onlyb"].sha256 == _sha(only_b)

        a.hits.clear()
        b.hits.clear()
        cache = ArtifactCache(tmp_path / "cache")
        fetch(lockset, manifest=m, cache=cache)
        assert a.hits.get(shared_a.name) == 1 and shared_b.name not in b.hits
        assert b.hits.get(only_b.name) == 1
        assert all(found for found in cache.lookup_many([(_sha(shared_a), shared_a.name), (_sha(only_b), only_b.name)]))
