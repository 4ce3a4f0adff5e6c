"""The documented exit codes (docs/cli.md), asked of the installed `repropack` script in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runhelp import write_project

from repropack import errors

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("repropack")  # the console script the venv installed


def installed(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    assert SCRIPT.exists(), f"no installed repropack script at {SCRIPT}"
    return subprocess.run([str(SCRIPT), *args, "-C", str(root)], capture_output=True, text=True, timeout=timeout)


def _steps(tmp_path: Path, step: str) -> Path:
    return write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [[steps]]
        {step}
    """)


def test_0_ok_and_1_a_failed_step(tmp_path):
    ok = _steps(tmp_path / "ok", 'name = "a"\nrun = "echo hi > {outputs}"\noutputs = ["a.txt"]')
    assert installed(ok, "run").returncode == errors.EXIT_OK == 0
    bad = _steps(tmp_path / "bad", 'name = "a"\nrun = "exit 3"\noutputs = ["a.txt"]')
    done = installed(bad, "run")
    assert done.returncode == errors.EXIT_FAILURE == 1, done.stderr
    assert "failed: a" in done.stderr


@pytest.mark.parametrize("args", [("run", "--no-such-option"), ("run", "nosuchstep"), ("run", "--profile", "nope"),
                                  ("run", "--jobs", "0")])
def test_2_usage(tmp_path, args):
    root = _steps(tmp_path, 'name = "a"\nrun = "echo hi > {outputs}"\noutputs = ["a.txt"]')
    done = installed(root, *args)
    assert done.returncode == errors.EXIT_USAGE == 2, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [("check",), ("run",), ("run", "--dry-run"), ("lock",)])
def test_3_invalid_manifest(tmp_path, command):
    root = _steps(tmp_path, 'name = "a"\nrun = "echo hi > {outputs}"\noutputs = ["../escape.txt"]')
    done = installed(root, *command)
    assert done.returncode == errors.EXIT_MANIFEST == 3, done.stderr
    assert "escapes the project folder" in done.stderr + done.stdout


def test_3_no_manifest(tmp_path):
    done = installed(tmp_path, "run")
    assert done.returncode == 3 and "no repropack.toml" in done.stderr


def test_4_missing_and_stale_lock(tmp_path):
    root = tmp_path / "conda-local"
    shutil.copytree(REPO / "examples" / "conda-local", root)
    for command in (("run",), ("fetch",), ("lock", "--check"), ("env", "create")):
        done = installed(root, *command)
        assert done.returncode == errors.EXIT_LOCK == 4, (command, done.stderr)
        assert "repropack lock" in done.stderr
    assert installed(root, "lock").returncode == 0
    manifest = root / "repropack.toml"
    manifest.write_text(manifest.read_text().replace('"numpy >=1.26"', '"numpy >=1.20"'))
    for command in (("run",), ("fetch",), ("lock", "--check"), ("build",)):
        done = installed(root, *command)
        assert done.returncode == 4, (command, done.stderr)
        assert "is stale" in done.stderr and "run `repropack lock`" in done.stderr


@pytest.mark.parametrize("resource", ["cpus = 100000", 'memory = "100 TB"', "gpus = 64"])
def test_5_refused_resource_request(tmp_path, resource):
    root = _steps(tmp_path, f'name = "big"\nrun = "echo hi > {{outputs}}"\noutputs = ["a.txt"]\n'
                            f'resources = {{ {resource} }}')
    done = installed(root, "run")
    assert done.returncode == errors.EXIT_RESOURCES == 5, done.stderr
    assert "big" in done.stderr and "nothing was run" in done.stderr
    assert not (root / "a.txt").exists()


def test_6_busy_and_130_on_ctrl_c(tmp_path):
    root = _steps(tmp_path, 'name = "slow"\nrun = "sleep 60; echo > {outputs}"\noutputs = ["a.txt"]')
    first = subprocess.Popen([str(SCRIPT), "run", "-C", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 30
        while not (root / ".repropack" / "runs" / "latest").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = installed(root, "run")
        assert second.returncode == errors.EXIT_BUSY == 6, second.stderr
        assert "another `repropack run` is active" in second.stderr
        first.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
    assert first.returncode == errors.EXIT_INTERRUPTED == 130, err
    assert "Traceback" not in err
