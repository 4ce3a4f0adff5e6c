"""Any value of the wrong shape anywhere in a manifest or module is a reported problem, never a crash."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import tomlkit

from repropack.errors import ManifestError
from repropack.manifest.loader import check_manifest
from test_manifest_loader import FULL
from test_manifest_modules import MANIFEST, MODULE

WRONG = [7, ["a"], {"a": 1}, "{bad"]


def key_paths(obj, prefix=()):
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from key_paths(value, prefix + (key,))


def replaced(data, path, value):
    data = copy.deepcopy(data)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


def variants(text):
    base = tomllib.loads(text)
    for path in key_paths(base):
        for value in WRONG:
            yield path, value, tomlkit.dumps(replaced(base, path, value))


def check_all(root: Path, write) -> int:
    refused = 0
    for path, value, text in write:
        manifest, errors = check_manifest(root)
        assert all(isinstance(e, ManifestError) for e in errors), (path, value)
        assert (manifest is None) == bool(errors)
        refused += bool(errors)
    return refused


def test_manifest_variants(tmp_path):
    def write():
        for path, value, text in variants(FULL):
            (tmp_path / "repropack.toml").write_text(text)
            yield path, value, text

    assert check_all(tmp_path, write()) > 200


@pytest.mark.parametrize("which", ["manifest", "module"])
def test_module_variants(tmp_path, which):
    (tmp_path / "modules" / "align" / "scripts").mkdir(parents=True)

    def write():
        for path, value, text in variants(MANIFEST if which == "manifest" else MODULE):
            (tmp_path / "repropack.toml").write_text(text if which == "manifest" else MANIFEST)
            (tmp_path / "modules" / "align" / "module.toml").write_text(text if which == "module" else MODULE)
            yield path, value, text

    assert check_all(tmp_path, write()) > 60
