"""`repropack run` does what the lock already decides (issue 15 item 8).

A fresh clone with a committed lock: `run` fetches and installs what the lock names, with no other
command; `--offline` and `--frozen` forbid it; a missing or stale lock stays an error naming the fix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _engines import LOCAL_BASE_IMAGE

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("repropack")


def cli(root: Path, *args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args, "-C", str(root)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                   capture_output=True)


def committed_clone(tmp_path: Path, example: str, env: dict) -> Path:
    """The example locked and committed (lock files in, .repropack and results out), then cloned."""
    origin = tmp_path / "origin"
    shutil.copytree(REPO / "examples" / example, origin,
                    ignore=lambda d, names: {"results", ".repropack"} & set(names) if d == str(REPO / "examples" / example) else set())
    done = cli(origin, "lock", env=env)
    assert done.returncode == 0, done.stderr
    (origin / ".gitignore").write_text(".repropack/\nresults/\n")
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "locked")
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    assert (clone / "repropack.lock").exists() and not (clone / ".repropack").exists()
    return clone


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "REPROPACK_CACHE": str(tmp_path / "empty-cache"),
            "PATH": f"{SCRIPT.parent}:{os.environ['PATH']}", "REPROPACK_BASE_OVERRIDE": LOCAL_BASE_IMAGE}


def test_fresh_clone_runs_with_no_other_command_conda(tmp_path, env):
    clone = committed_clone(tmp_path, "conda-local", env)
    env["REPROPACK_CACHE"] = str(tmp_path / "clone-cache")  # nothing fetched yet on this "machine"
    for flag, message in (("--offline", "not in the cache"), ("--frozen", "--frozen forbids creating it")):
        refused = cli(clone, "run", flag, env=env)
        assert refused.returncode == 1, refused.stderr
        assert message in refused.stderr and "Traceback" not in refused.stderr
        assert not (clone / "results").exists()
    done = cli(clone, "run", env=env)
    assert done.returncode == 0, done.stderr
    assert "fetched 3 artifact(s)" in done.stderr
    assert "created environment default" in done.stderr
    assert (clone / "results" / "greeting.txt").read_text().strip()
    again = cli(clone, "run", "--frozen", "--no-resume", env=env)  # everything is here now: --frozen is fine
    assert again.returncode == 0, again.stderr
    assert "fetched" not in again.stderr and "created environment" not in again.stderr


def test_env_run_fetches_and_creates_too(tmp_path, env):
    clone = committed_clone(tmp_path, "conda-local", env)
    env["REPROPACK_CACHE"] = str(tmp_path / "clone-cache")
    done = subprocess.run([str(SCRIPT), "env", "run", "-C", str(clone), "--", "greet"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "fetched 3 artifact(s)" in done.stderr and done.stdout.strip()


def test_missing_or_stale_lock_is_never_resolved_behind_the_users_back(tmp_path, env):
    clone = committed_clone(tmp_path, "conda-local", env)
    manifest = clone / "repropack.toml"
    manifest.write_text(manifest.read_text().replace('"numpy >=1.26"', '"numpy >=1.20"'))
    before = (clone / "repropack.lock").read_bytes()
    stale = cli(clone, "run", env=env)
    assert stale.returncode == 4 and "is stale" in stale.stderr and "run `repropack lock`" in stale.stderr
    assert (clone / "repropack.lock").read_bytes() == before
    (clone / "repropack.lock").unlink()
    missing = cli(clone, "run", env=env)
    assert missing.returncode == 4 and "run `repropack lock`" in missing.stderr
    assert not (clone / "repropack.lock").exists() and not (clone / "results").exists()


@pytest.mark.network
def test_fresh_clone_of_the_quickstart_runs_from_pypi(tmp_path, env):
    clone = committed_clone(tmp_path, "quickstart", env)
    env["REPROPACK_CACHE"] = str(tmp_path / "clone-cache")
    done = cli(clone, "run", env=env)
    assert done.returncode == 0, done.stderr
    assert "fetched 1 artifact(s)" in done.stderr and ": 4 done" in done.stderr
    assert (clone / "results" / "summary.tsv").exists()


@pytest.mark.network
@pytest.mark.docker
def test_build_in_a_fresh_clone_fetches_what_its_layers_need(tmp_path, env, base_image):
    clone = committed_clone(tmp_path, "quickstart", env)
    env["REPROPACK_CACHE"] = str(tmp_path / "clone-cache")
    frozen = cli(clone, "build", "--frozen", "--tag", "repropack-test/provisions:1", env=env)
    assert frozen.returncode == 1 and "not in the verified cache" in frozen.stderr, frozen.stderr
    done = cli(clone, "build", "-v", "--tag", "repropack-test/provisions:1", env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "fetching environment default" in done.stderr and "fetched 1 artifact(s)" in done.stderr
    # -v: every phase, with the size of what it made
    assert re.search(r"\] environment default: \d+(\.\d)? (kB|MB) layer built$", done.stderr, flags=re.M), done.stderr
    assert re.search(r"\] workflow files: \d+(\.\d)? (B|kB|MB) layer (built|reused)$", done.stderr, flags=re.M)
    assert re.search(r"^  +\d+(\.\d)? (kB|MB)  built   repropack: environment default", done.stderr, flags=re.M)
    subprocess.run(["docker", "image", "rm", "-f", "repropack-test/provisions:1"], capture_output=True)
