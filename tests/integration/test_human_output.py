"""What a person reads: human units, -q and -v, summaries on stderr and --json alone on stdout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runhelp import repropack, write_project

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("repropack")

MANIFEST = """
    [project]
    name = "p"
    [[steps]]
    name = "grow"
    run = "python3 scripts/grow.py {outputs}"
    outputs = ["out.txt"]
"""
GROW = "import sys\nb = bytearray(40_000_000)\nopen(sys.argv[1], 'w').write(str(len(b)))\n"


def test_logs_print_human_units(tmp_path):
    root = write_project(tmp_path / "p", MANIFEST, {"scripts/grow.py": GROW})
    repropack(root, "run", check=True)
    logs = repropack(root, "logs", "grow", check=True).stdout
    rss = re.search(r"peak rss: (\d+(?:\.\d)?) (B|kB|MB|GB)\b", logs)
    assert rss and rss.group(2) == "MB" and float(rss.group(1)) >= 20, logs
    assert re.search(r"wall: \d+(\.\d)? (ms|s)\b", logs) and re.search(r"cpu: ", logs), logs
    assert not re.search(r"\d{6,} B\b", logs)


def test_quiet_and_json_streams(tmp_path):
    root = write_project(tmp_path / "p", MANIFEST, {"scripts/grow.py": GROW})
    quiet = repropack(root, "run", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    as_json = repropack(root, "run", "--json", "--no-resume")
    assert json.loads(as_json.stdout)["counts"]["done"] == 1  # stdout holds the JSON and nothing else
    verbose = repropack(root, "run", "-v")
    assert "skipped grow" in verbose.stderr and verbose.stdout == ""
    plain = repropack(root, "run")
    assert "skipped grow" not in plain.stderr and ": 1 skipped" in plain.stderr and "\x1b" not in plain.stderr


@pytest.fixture
def conda_local(tmp_path, monkeypatch):
    root = tmp_path / "conda-local"
    shutil.copytree(REPO / "examples" / "conda-local", root)
    return root, {**os.environ, "REPROPACK_CACHE": str(tmp_path / "cache")}


def test_lock_and_fetch_summaries_go_to_stderr_with_v_and_q(conda_local):
    root, env = conda_local

    def run(*args):
        return subprocess.run([str(SCRIPT), *args, "-C", str(root)], capture_output=True, text=True, env=env,
                              timeout=300)

    locked = run("lock")
    assert locked.returncode == 0 and locked.stdout == "" and "wrote " in locked.stderr
    assert run("lock", "-q").stderr == ""
    fetched = run("fetch", "-v")
    assert fetched.returncode == 0 and fetched.stdout == ""
    assert len(re.findall(r"^fetched greet", fetched.stderr, flags=re.M)) == 2  # greet and greet-data
    assert re.search(r"3 downloaded \(\d+(\.\d)? (B|kB)", fetched.stderr), fetched.stderr
    again = run("fetch", "--json")
    assert json.loads(again.stdout)["cached"] == 3 and again.stderr == ""
    assert run("fetch", "-q").stderr == ""
