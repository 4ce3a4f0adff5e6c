"""The job-side results script run as the node runs it: `python3 jobside.py`, without repropack importable."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
from repropack.backends import jobside
from repropack.run.records.format import read_frames

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "schema" / "records-v2.schema.json"


def member(tmp: Path, name: str, command: str, *, time=None, outputs=()):
    adir = tmp / name
    adir.mkdir()
    (adir / "script.sh").write_text(command + "\n")
    return {"instance": name, "attempt": 1, "argv": ["bash", "-euo", "pipefail", str(adir / "script.sh")],
            "cwd": str(tmp), "env": "e", "stdout": str(adir / "stdout"), "stderr": str(adir / "stderr"),
            "time": time, "outputs": [list(o) for o in outputs], "pack_index": 0,
            "requested": {"cpus": 1, "memory": None, "time": time, "gpus": 0}, "staging": {}}


def test_a_packed_element_writes_one_valid_record_per_member(tmp_path):
    members = [member(tmp_path, "ok", "echo made > tmp-out; echo hello; echo oops >&2", outputs=[("out", "tmp-out")]),
               member(tmp_path, "bad", "exit 3"),
               member(tmp_path, "slow", "sleep 30", time=1),
               member(tmp_path, "env", 'test "$ONLY" = this && test -z "${HOME:-}"; echo "$ONLY" > envout')]
    (tmp_path / "tasks.jsonl").write_text(json.dumps({"members": members}) + "\n")
    (tmp_path / "envs.json").write_text(json.dumps({"e": {"ONLY": "this", "PATH": "/usr/bin:/bin"}}))
    run_dir = tmp_path / "run"
    done = subprocess.run(["python3", "-I", jobside.__file__, "--tasks", str(tmp_path / "tasks.jsonl"), "--index", "0",
                           "--envs", str(tmp_path / "envs.json"), "--run-dir", str(run_dir), "--writer", "slurm-7_0",
                           "--job-id", "7_0"], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in (run_dir / "results" / "slurm-7_0.jsonl").read_text().splitlines()]
    schema = json.loads(SCHEMA.read_text())
    result_schema = {**schema["$defs"]["result"], "$defs": schema["$defs"]}
    for line in lines:
        jsonschema.validate(line, result_schema)
    by = {r["instance"]: r for r in lines}
    assert (by["ok"]["exit_status"], by["ok"]["failure"]) == (0, None)
    assert by["ok"]["outputs"][0]["path"] == "out" and by["ok"]["outputs"][0]["size"] == 5
    assert (by["bad"]["exit_status"], by["bad"]["failure"]) == (3, "exit")
    assert by["slow"]["failure"] == "timeout"
    assert by["env"]["failure"] is None and (tmp_path / "envout").read_text() == "this\n"
    log = (run_dir / "streams" / "slurm-7_0.log").read_bytes()
    frames = [(h["instance"], h["stream"], log[o:o + n]) for h, o, n in read_frames(log)]
    assert frames == [("ok", "stdout", b"hello\n"), ("ok", "stderr", b"oops\n")]
    ref = by["ok"]["streams"]["stderr"]
    assert log[ref["offset"]:ref["offset"] + ref["length"]] == b"oops\n"


def test_jobside_imports_nothing_of_repropack():
    import ast

    tree = ast.parse(Path(jobside.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module != "__future__"]
    assert not [n for n in names if n.split(".")[0] == "repropack"]
    import sys

    assert set(n.split(".")[0] for n in names) <= set(sys.stdlib_module_names)


def test_the_posix_shell_fallback_writes_the_same_records(tmp_path):
    """jobside.sh, for nodes without python3: same records (no CPU or peak memory), same frames."""
    from repropack.backends.base import Job, JobResources
    from repropack.backends.slurm import batch
    from repropack.backends.slurm.backend import JOBSIDE_SH

    def job(name, command, outputs=()):
        adir = tmp_path / name / "attempt-1"
        adir.mkdir(parents=True)
        (adir / "script.sh").write_text(command + "\n")
        return Job(instance_id=f"s[v={name}]", attempt=1, run_id="r", project=tmp_path, attempt_dir=adir,
                   script=command, env={"PATH": "/usr/bin:/bin", "ONLY": "it's $(here)"},
                   resources=JobResources(), step="s", options={"pack": 3}, outputs=tuple(outputs))

    jobs = [job("a", 'echo "$ONLY" > made; echo out', [("final/a", "made")]), job("b", "exit 4"),
            job("c", "kill -KILL $$")]
    group = batch.plan(jobs, 10)[0]
    group.token = "tok"
    run_dir = tmp_path / "run"
    batch.write_batch(group, run_id="r", run_dir=run_dir, jobside=run_dir / "x.py", jobside_sh=JOBSIDE_SH)
    done = subprocess.run(["/bin/sh", str(JOBSIDE_SH), str(run_dir / "slurm" / "tok.tasks.sh"), "0", str(run_dir),
                           "slurm-5_0", "5_0"], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in (run_dir / "results" / "slurm-5_0.jsonl").read_text().splitlines()]
    schema = json.loads(SCHEMA.read_text())
    for line in lines:
        jsonschema.validate(line, {**schema["$defs"]["result"], "$defs": schema["$defs"]})
    by = {r["instance"]: r for r in lines}
    assert (tmp_path / "made").read_text() == "it's $(here)\n"
    assert by["s[v=a]"]["failure"] is None and by["s[v=a]"]["outputs"][0]["path"] == "final/a"
    assert (by["s[v=b]"]["exit_status"], by["s[v=b]"]["failure"]) == (4, "exit")
    assert (by["s[v=c]"]["signal"], by["s[v=c]"]["failure"]) == (9, "signal")
    log = (run_dir / "streams" / "slurm-5_0.log").read_bytes()
    ref = by["s[v=a]"]["streams"]["stdout"]
    assert log[ref["offset"]:ref["offset"] + ref["length"]] == b"out\n"
    assert [h["instance"] for h, _, _ in read_frames(log)] == ["s[v=a]"]
