"""Run records of format 2 (written with the format's own builders) -> facts -> crate and SBOM:
environments and lock files from run.json and the verified lock, params from the verified manifest
and --param, a cached instance pointing at its run, digests from SHA256SUMS, a newer format refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from _rocvalidate import validate_crate
from repropack.errors import FormatVersionError, UsageError
from repropack.provenance import CRATE_NAME, write_provenance
from repropack.provenance.source import read_facts
from repropack.run.records import format as fmt
from repropack.run.records.sums import sums_bytes

RUN = "20261202T000000Z-aaaaaa"
MANIFEST = """[project]
name = "v2demo"
license = "CC0-1.0"
[params]
min_length = 3
api_token = "s3cr3t-default-token"
[environments.default]
pip = ["tabulate ==0.9.0"]
"""
PYLOCK = '''lock-version = "1.0"
[[packages]]
name = "tabulate"
version = "0.9.0"
[[packages.wheels]]
url = "https://files.pythonhosted.org/packages/40/44/tabulate-0.9.0-py3-none-any.whl"
hashes = { sha256 = "024ca478df22e9340661486f85298cff5f6dcdba14f3813e8830015b9ed1948f" }
'''


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _put(root: Path, rel: str, text: str) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)
    return _sha(text.encode())


def _lines(records: list[dict]) -> bytes:
    return b"".join(fmt.dumps_line(r) for r in records)


def _project(root: Path) -> Path:
    manifest = _put(root, "repropack.toml", MANIFEST)
    pylock = _put(root, "locks/default/pylock.linux-64.toml", PYLOCK)
    lock = _put(root, "repropack.lock", f'version = 1\nrepropack = "0.1.0"\n\n[manifest]\nhash-scheme = "x"\nhash = "y"\n\n'
                f'[base-image]\nreference = "python:3.11-slim"\nsource = "local"\ndigest = "sha256:{"34" * 32}"\n'
                f'digest-kind = "image-id"\n\n[environments.default]\ninputs-hash = "z"\n\n[environments.default.files]\n'
                f'"locks/default/pylock.linux-64.toml" = "sha256:{pylock}"\n')
    data = _put(root, "data/a.txt", "a b c\n")
    out_a = _put(root, "results/a.n", "3\n")
    out_b = _put(root, "results/b.n", "4\n")
    run_dir = root / ".repropack" / "runs" / RUN
    (run_dir / "results").mkdir(parents=True)
    env = fmt.environment_identity(runtime="host", lock_sha256="sha256:" + "ab" * 32)
    run = fmt.run_record(run_id=RUN, repropack_version="0.1.0",
                         argv=["repropack", "run", "--param", "min_length=5", "--param", "api_token=s3cr3t-cli-token"],
                         host="node1", user="ada", profile="local", started=1.0e9, ended=1.0e9 + 9,
                         status="ok", manifest={"path": "repropack.toml", "sha256": manifest},
                         lock={"path": "repropack.lock", "sha256": lock}, environments={"default": env}, pid=1,
                         instances=2)
    (run_dir / fmt.RUN_JSON).write_text(json.dumps(run))
    common = dict(key="k2:x", key_parts={}, environment="default", image=None, profile="local", runtime="host",
                  backend="local", resources={"cpus": 1})
    a = fmt.instance_record(id="count[s=a]", step="count", values={"s": "a"}, deps=[], command="wc -w data/a.txt > results/a.n",
                            inputs=[fmt.input_entry("data/a.txt", data, 6)], outputs=["results/a.n"], **common)
    b = fmt.instance_record(id="count[s=b]", step="count", values={"s": "b"}, deps=[], command="wc -w data/b.txt > results/b.n",
                            inputs=[], outputs=["results/b.n"], cached_from="20261201T000000Z-bbbbbb", **common)
    (run_dir / fmt.INSTANCES).write_bytes(_lines([a, b]))
    result = fmt.result_record(instance="count[s=a]", attempt=1, writer="local", backend="local", job_id="42",
                               metrics={"start": 1.0e9 + 1, "end": 1.0e9 + 2, "wall": 1.0, "cpu": 0.5,
                                        "peak_rss": 1000, "peak_rss_source": "cgroup-v1", "cpu_source": "cgroup-v1"},
                               exit_status=0, signal=None, failure=None, message=None,
                               outputs=[fmt.output_entry("results/a.n", out_a, 2)], streams={}, staging={},
                               requested={"cpus": 1})
    (run_dir / "results" / "local.jsonl").write_bytes(_lines([result]))
    (run_dir / fmt.SUMS).write_bytes(sums_bytes({"results/a.n": out_a, "results/b.n": out_b}))
    (root / ".repropack" / "runs" / "latest").write_text(RUN + "\n")
    return root


def test_format_2_records_give_the_facts(tmp_path):
    root = _project(tmp_path)
    facts, _ = read_facts(root)
    assert facts.format == 2 and facts.project == "v2demo" and facts.license == "CC0-1.0"
    assert facts.params == {"min_length": "5", "api_token": "***"}
    assert [i.state for i in facts.instances] == ["ok", "cached"]
    assert facts.instances[1].cached_from == "20261201T000000Z-bbbbbb"
    assert facts.instances[0].inputs[0].sha256 and facts.instances[0].inputs[0].size == 6
    env = facts.environments["default"]
    assert env.lock_files[0].path == "locks/default/pylock.linux-64.toml"
    assert facts.base_image.digest == "sha256:" + "34" * 32
    assert "s3cr3t" not in json.dumps(facts.argv)


def test_format_2_crate_and_sbom(tmp_path):
    root = _project(tmp_path)
    written = write_provenance(root)
    assert written.packages == {"default": 1} and written.actions == 2
    data = json.loads(written.crate.read_text())
    graph = {e["@id"]: e for e in data["@graph"]}
    assert graph["results/a.n"]["sha256"] == _sha(b"3\n") and graph["results/b.n"]["sha256"] == _sha(b"4\n")
    assert graph["#record-20261201T000000Z-bbbbbb"]["identifier"] == "20261201T000000Z-bbbbbb"
    assert "s3cr3t" not in written.crate.read_text()
    (root / CRATE_NAME).write_bytes(written.crate.read_bytes())
    passed, issues = validate_crate(root)
    assert passed, "\n".join(issues)


def test_a_changed_manifest_gives_no_defaults(tmp_path):
    root = _project(tmp_path)
    (root / "repropack.toml").write_text(MANIFEST.replace("min_length = 3", "min_length = 9\nextra = 1"))
    facts, _ = read_facts(root)
    assert facts.params == {"min_length": "5", "api_token": "***"}  # only what the run's command line says
    assert facts.license is None


def test_newer_records_and_unknown_runs_are_clear_errors(tmp_path):
    root = _project(tmp_path)
    with pytest.raises(UsageError, match="no run 'nope'"):
        read_facts(root, "nope")
    run_json = root / ".repropack" / "runs" / RUN / fmt.RUN_JSON
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "format": 99}))
    with pytest.raises(FormatVersionError, match="99"):
        read_facts(root)


def test_a_later_run_reuses_the_sbom_of_the_same_environment(tmp_path):
    root = _project(tmp_path)
    first = write_provenance(root)
    cached = list((root / ".repropack" / "cache" / "sbom").glob("*.cdx.json"))
    assert len(cached) == 1 and cached[0].read_bytes() == first.sboms["default"].read_bytes()
    again = write_provenance(root, out_dir=tmp_path / "again")
    assert again.sboms["default"].read_bytes() == first.sboms["default"].read_bytes()
    assert again.packages == {"default": 1}
