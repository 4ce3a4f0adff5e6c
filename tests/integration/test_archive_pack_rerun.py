"""pack -> verify -> rerun of a small project on the host: deterministic archives, the verdict table,
[compare] rules, and a rerun that differs (exit 1, a short diff)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from _engines import require_tool

from repropack.cli import main

MANIFEST = """\
requires-repropack = ">=0.1"
[project]
name = "mini"
version = "0.1"

[compare]
"results/stamp.log" = { ignore-lines = "^made at " }
"results/noise.bin" = "ignore"

[[steps]]
name = "upper"
run = "tr a-z A-Z < {inputs} > {outputs}"
inputs = ["data/in.txt"]
outputs = ["results/out.txt"]

[[steps]]
name = "stamp"
run = "sh scripts/stamp.sh {outputs}"
outputs = ["results/stamp.log", "results/noise.bin"]
sources = ["scripts/stamp.sh"]
"""
STAMP = 'echo "made at $(date +%s%N)" > "$1"\necho steady >> "$1"\nhead -c 64 /dev/urandom > "$2"\n'


def make_project(root: Path, *, stamp: str = STAMP) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "repropack.toml").write_text(MANIFEST)
    (root / "data" / "in.txt").write_text("hello\nworld\n")
    (root / "scripts" / "stamp.sh").write_text(stamp)
    return root


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROPACK_CACHE", str(tmp_path / "cache"))
    root = make_project(tmp_path / "p")
    assert main(["lock", "-C", str(root)]) == 0
    assert main(["run", "-C", str(root)]) == 0
    return root


def test_pack_is_deterministic_across_copies_and_threads(project, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, symlinks=True)
    os.utime(copy / "repropack.toml", (1, 1))
    a, b, c = tmp_path / "a.tar.zst", tmp_path / "b.tar.zst", tmp_path / "c.tar.zst"
    assert main(["pack", "-C", str(project), "-o", str(a), "--with-inputs", "--with-outputs", "--threads", "1"]) == 0
    assert main(["pack", "-C", str(copy), "-o", str(b), "--with-inputs", "--with-outputs", "--threads", "2"]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert main(["pack", "-C", str(project), "-o", str(c)]) == 0
    assert c.read_bytes() != a.read_bytes()  # without inputs and outputs
    assert not list(tmp_path.glob(".*.partial"))


def test_rerun_identical_with_rules_applied(project, tmp_path, capsys):
    archive = tmp_path / "mini.tar.zst"
    assert main(["pack", "-C", str(project), "-o", str(archive), "--with-inputs"]) == 0
    capsys.readouterr()
    assert main(["verify", str(archive), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parts"]["inputs"]["files"] == 1 and report["signature"]["status"] == "unsigned"
    assert main(["rerun", str(archive), "--dir", str(tmp_path / "again"), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    by_path = {o["path"]: o for o in verdict["outputs"]}
    assert by_path["results/out.txt"]["verdict"] == "identical"
    assert by_path["results/stamp.log"]["verdict"] == "identical"
    assert "ignore-lines" in by_path["results/stamp.log"]["rule"]
    assert by_path["results/noise.bin"]["verdict"] == "ignored"
    assert verdict["identical"] is True
    assert (tmp_path / "again" / "project" / "results" / "out.txt").read_text() == "HELLO\nWORLD\n"


def test_rerun_that_differs_exits_1_with_a_short_diff(project, tmp_path, capsys, monkeypatch):
    archive = tmp_path / "mini.tar.zst"
    assert main(["pack", "-C", str(project), "-o", str(archive), "--with-inputs", "--with-outputs"]) == 0
    capsys.readouterr()
    from repropack.archive import rerun as rerun_mod

    real_run = rerun_mod.run_workflow

    def reader_machine_differs(proj, cache, profile, stdout=None):
        (proj / "data" / "in.txt").write_text("hello\nthere\n")  # the reader's run sees other input
        return real_run(proj, cache, profile, stdout)

    monkeypatch.setattr(rerun_mod, "run_workflow", reader_machine_differs)
    assert main(["rerun", str(archive), "--dir", str(tmp_path / "rerun")]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"results/out.txt +different", out)
    assert "-WORLD" in out and "+THERE" in out  # the short diff of a text output
    assert "1 of 3 output(s) differ or are missing" in err


def test_rerun_refuses_a_profile_the_manifest_lacks(project, tmp_path, capsys):
    archive = tmp_path / "mini.tar.zst"
    assert main(["pack", "-C", str(project), "-o", str(archive), "--with-inputs"]) == 0
    assert main(["rerun", str(archive), "--dir", str(tmp_path / "r"), "--profile", "nope"]) == 2
    assert "not a profile" in capsys.readouterr().err


def test_pack_refuses_outputs_changed_since_the_run(project, tmp_path, capsys):
    (project / "results" / "out.txt").write_text("edited by hand\n")
    assert main(["pack", "-C", str(project), "-o", str(tmp_path / "x.tar.zst")]) == 8
    assert "differ from what the run recorded" in capsys.readouterr().err
    assert not (tmp_path / "x.tar.zst").exists()


def test_pack_sign_then_verify_and_rerun_check_the_signer(project, tmp_path, capsys):
    require_tool("ssh-keygen", "openssh-client")
    import subprocess

    def keypair(name):
        key = tmp_path / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
        kind, blob = key.with_suffix(".pub").read_text().split()[:2]
        signers = tmp_path / f"{name}.allowed"
        signers.write_text(f'{name}@lab namespaces="repropack" {kind} {blob}\n')
        return key, signers

    (alice, alice_ok), (_, mallory_ok) = keypair("alice"), keypair("mallory")
    archive = tmp_path / "signed.tar.zst"
    assert main(["pack", "-C", str(project), "-o", str(archive), "--with-inputs", "--sign", str(alice)]) == 0
    assert main(["verify", str(archive), "--allowed-signers", str(alice_ok)]) == 0
    assert "signed by alice@lab" in capsys.readouterr().out
    target = tmp_path / "reader"
    assert main(["rerun", str(archive), "--dir", str(target), "--allowed-signers", str(mallory_ok)]) == 8
    assert "not listed in" in capsys.readouterr().err
    assert not target.exists()
    assert main(["rerun", str(archive), "--dir", str(target), "--allowed-signers", str(alice_ok)]) == 0
