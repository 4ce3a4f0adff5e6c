"""The CycloneDX SBOM of an environment, from its lock files: purls and hashes of conda and PyPI
packages, the base image as a component, valid under cyclonedx-python-lib's strict JSON validator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from _provsample import sample_run
from repropack.provenance.model import EnvironmentFact, FileFact
from repropack.provenance.sbom import build_sbom, validate_sbom

PYLOCK = '''lock-version = "1.0"
[[packages]]
name = "Tabulate"
version = "0.9.0"
[[packages.wheels]]
url = "https://files.pythonhosted.org/packages/40/44/tabulate-0.9.0-py3-none-any.whl"
size = 35252
hashes = { sha256 = "024ca478df22e9340661486f85298cff5f6dcdba14f3813e8830015b9ed1948f" }
'''
CONDA_LOCK = '''version: 1
metadata: {}
package:
- name: zlib
  version: 1.3.1
  manager: conda
  platform: linux-64
  dependencies: {}
  url: file:///tmp/channel/linux-64/zlib-1.3.1-h0_0.conda
  hash: {md5: 0123456789abcdef0123456789abcdef, sha256: %s}
  category: main
  optional: false
- name: six
  version: 1.17.0
  manager: pip
  platform: linux-64
  dependencies: {}
  url: https://files.pythonhosted.org/packages/six-1.17.0-py2.py3-none-any.whl
  hash: {sha256: %s}
  category: main
  optional: false
''' % ("aa" * 32, "bb" * 32)


def _env(root: Path, files: dict[str, str]) -> EnvironmentFact:
    facts = []
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        facts.append(FileFact(rel, hashlib.sha256(text.encode()).hexdigest()))
    return EnvironmentFact("default", "sha256:" + "ab" * 32, tuple(facts), image_id="sha256:" + "cd" * 32,
                           image_name="repropack/demo:abc")


def test_sbom_lists_packages_with_purls_and_hashes_and_validates(tmp_path):
    facts = sample_run(tmp_path, kind="ok")
    env = _env(tmp_path, {"locks/default/pylock.linux-64.toml": PYLOCK, "locks/default/conda-lock.yml": CONDA_LOCK})
    text, count = build_sbom(facts, env, tmp_path)
    assert validate_sbom(text) is None
    assert count == 3
    comps = {c["name"]: c for c in json.loads(text)["components"]}
    assert comps["Tabulate"]["purl"].startswith("pkg:pypi/tabulate@0.9.0")
    assert comps["Tabulate"]["hashes"] == [{"alg": "SHA-256", "content": "024ca478df22e9340661486f85298cff5f6dcdba14f3813e8830015b9ed1948f"}]
    assert comps["zlib"]["purl"].startswith("pkg:conda/zlib@1.3.1?")
    assert "build=h0_0" in comps["zlib"]["purl"] and "subdir=linux-64" in comps["zlib"]["purl"]
    assert {h["alg"] for h in comps["zlib"]["hashes"]} == {"SHA-256", "MD5"}
    assert comps["six"]["purl"].startswith("pkg:pypi/six@1.17.0")
    base = comps["python"]
    assert base["type"] == "container" and base["hashes"][0]["content"] == "34" * 32
    assert comps["repropack/demo"]["hashes"][0]["content"] == "cd" * 32
    assert build_sbom(facts, env, tmp_path)[0] == text  # the same run gives the same bytes


def test_a_lock_file_changed_since_the_run_is_not_read(tmp_path):
    facts = sample_run(tmp_path, kind="ok")
    env = _env(tmp_path, {"locks/default/pylock.linux-64.toml": PYLOCK})
    (tmp_path / "locks/default/pylock.linux-64.toml").write_text(PYLOCK.replace("0.9.0", "0.9.1"))
    text, count = build_sbom(facts, env, tmp_path)
    assert count == 0 and validate_sbom(text) is None
    props = {p["value"] for p in json.loads(text)["metadata"]["properties"] if p["name"] == "repropack:problem"}
    assert any("changed since the run" in p for p in props)


def test_validator_rejects_a_broken_sbom(tmp_path):
    facts = sample_run(tmp_path, kind="ok")
    text, _ = build_sbom(facts, _env(tmp_path, {"locks/default/pylock.linux-64.toml": PYLOCK}), tmp_path)
    data = json.loads(text)
    data["components"][0]["type"] = "not-a-type"
    assert validate_sbom(json.dumps(data)) is not None
