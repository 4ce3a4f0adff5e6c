"""Secrets never reach anything repropack prints or records (issue 8, defect 9).

The step itself must still get the real values; what the step writes to its own
stdout/stderr (and the script it runs) is the user's data, but every line repropack
prints from them, and every record it keeps, is masked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from runhelp import journal, repropack, write_project

TOKEN = "S3CRETVALUE-tok-91827"
AWS = "AWSs3cretVALUE-7733zz"
PASSWORD = "Hunter2Passw0rdXY"
DEFAULT = "DEFAULTKEY-5566aa"  # a secret-named param's default in the manifest

MANIFEST = f"""
    [project]
    name = "p"
    [params]
    token = "not-the-secret"
    api_key = "{DEFAULT}"
    [profiles.sec]
    env = ["AWS_SECRET_ACCESS_KEY"]
    [[steps]]
    name = "seen"
    run = "printf '%s %s\\n' {{params.token}} \\"$AWS_SECRET_ACCESS_KEY\\" > {{outputs}}"
    outputs = ["out/seen.txt"]
    [[steps]]
    name = "leak"
    run = "echo connect user=me password={PASSWORD}; echo token {{params.token}} key \\"$AWS_SECRET_ACCESS_KEY\\" api {{params.api_key}} >&2; exit 3"
    outputs = ["out/never.txt"]
"""

# The step's own streams and the script it runs: its data, kept as written (the step needs the values).
_STEP_FILES = {"stdout", "stderr", "script.sh"}


def _recorded_texts(root: Path) -> dict[str, str]:
    texts = {}
    for path in (root / ".repropack").rglob("*"):
        if path.is_file() and path.name not in _STEP_FILES:
            texts[str(path.relative_to(root))] = path.read_text(encoding="utf-8", errors="replace")
    return texts


def test_defect09_secrets_masked_in_output_and_records(tmp_path):
    _check_secrets_masked(write_project(tmp_path / "p", MANIFEST), tmp_path)


@pytest.mark.docker
def test_defect09_secrets_masked_with_the_docker_runtime(tmp_path, base_image):
    # The same through a container: the pass-through reaches the step, no record of ours holds it.
    manifest = MANIFEST + f"""
    [image]
    name = "{base_image}"
    """
    manifest = manifest.replace('env = ["AWS_SECRET_ACCESS_KEY"]', 'env = ["AWS_SECRET_ACCESS_KEY"]\n    runtime = "docker"')
    root = write_project(tmp_path / "p", manifest)
    _check_secrets_masked(root, tmp_path)
    assert {r["runtime"] for r in journal(root) if r["t"] == "start"} == {"docker"}


def _check_secrets_masked(root: Path, tmp_path: Path) -> None:
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": AWS}
    run = repropack(root, "run", "--profile", "sec", "--keep-going", "--param", f"token={TOKEN}", env=env)
    assert run.returncode == 1, run.stderr
    # The step got the real values.
    assert (root / "out/seen.txt").read_text() == f"{TOKEN} {AWS}\n"
    # The failure summary is there, with its command and log tails, but masked.
    assert "failed: leak" in run.stderr and "command: echo connect user=me password=***" in run.stderr
    assert "token *** key *** api ***" in run.stderr and "connect user=me password=***" in run.stderr
    shown = {"run": run.stdout + run.stderr}
    for args in (("status", "--json"), ("status",), ("logs", "leak"), ("logs", "leak", "-n", "5"),
                 ("report", "--json", "-o", str(tmp_path / "r.html"))):
        done = repropack(root, *args, env=env)
        assert done.returncode == 0, (args, done.stderr)
        shown[" ".join(args)] = done.stdout + done.stderr
    assert "connect user=me password=***" in shown["logs leak"]
    # Read later, from a shell without the variable: the run's digests still mask its value.
    bare = {k: v for k, v in os.environ.items() if k != "AWS_SECRET_ACCESS_KEY"}
    shown["logs without the variable"] = repropack(root, "logs", "leak", env=bare, check=True).stdout
    assert "key *** api ***" in shown["logs without the variable"]
    assert "--param" in json.loads(shown["status --json"])["run"]["argv"]  # the argv is kept, masked
    shown["report file"] = (tmp_path / "r.html").read_text()
    shown.update(_recorded_texts(root))
    assert any("journal" in name for name in shown)
    for where, text in shown.items():
        for secret in (TOKEN, AWS, PASSWORD, DEFAULT):
            assert secret not in text, f"{secret} reached {where}"
    # The step's own stderr keeps what the step wrote: it is the user's data.
    stderr = [p for p in (root / ".repropack").rglob("stderr") if "leak" in str(p)]
    assert stderr and TOKEN in stderr[0].read_text() and AWS in stderr[0].read_text()
