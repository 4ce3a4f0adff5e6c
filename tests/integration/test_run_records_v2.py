"""Run records v2 as the local runner writes them (issue 10 items 1-3): schema, streams, failures,
SHA256SUMS, declared commands, and no per-instance files for a successful instance."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
from runhelp import last_run_id, repropack, write_project

from repropack.run.records import format as rf

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/schema/records-v2.schema.json").read_text())


def _check(kind: str, record: dict) -> None:
    jsonschema.validate(record, {**SCHEMA, "$ref": f"#/$defs/{kind}"})


def _records(run: Path):
    info = json.loads((run / rf.RUN_JSON).read_text())
    instances = [json.loads(line) for line in (run / rf.INSTANCES).read_text().splitlines()]
    results = [json.loads(line) for line in (run / rf.results_file("local")).read_text().splitlines()]
    return info, {r["id"]: r for r in instances}, results


def _project(tmp_path, extra: str = "") -> Path:
    return write_project(tmp_path / "p", f"""
        [project]
        name = "p"

        [[steps]]
        name = "make"
        run = "echo made {{n}}; echo {{n}} > {{outputs}}"
        foreach = {{ n = ["a", "b"] }}
        outputs = ["out/{{n}}.txt"]

        [[steps]]
        name = "quiet"
        run = "cat {{inputs}} > {{outputs}}"
        inputs = ["out/a.txt"]
        outputs = ["quiet.txt"]
        {extra}
    """)


def test_records_match_the_schema_and_say_what_ran(tmp_path):
    root = _project(tmp_path)
    repropack(root, "run", "-j", "2", check=True)
    run = root / ".repropack" / "runs" / last_run_id(root)
    info, instances, results = _records(run)
    _check("run", info)
    assert info["status"] == "ok" and info["ended"] >= info["started"]
    assert info["manifest"]["path"] == "repropack.toml" and len(info["manifest"]["sha256"]) == 64
    assert "run" in info["argv"]
    for record in instances.values():
        _check("instance", record)
    for record in results:
        _check("result", record)
    made = instances["make[n=a]"]
    assert made["command"] == "echo made a; echo a > out/a.txt"  # the declared path, never a staging path
    assert made["values"] == {"n": "a"} and made["deps"] == [] and made["resources"]["cpus"] == 1
    quiet = instances["quiet"]
    assert quiet["deps"] == ["make[n=a]"]
    assert quiet["key_parts"]["inputs"] == [{"path": "out/a.txt", "size": 2,
                                             "sha256": _sha256(root / "out/a.txt")}]
    by_id = {r["instance"]: r for r in results}
    assert by_id["make[n=a]"]["outputs"] == [{"path": "out/a.txt", "sha256": _sha256(root / "out/a.txt"),
                                              "size": 2, "type": "file"}]
    # a stream is kept only when non-empty, framed in the one log, found by offset
    log = (run / rf.streams_file("local")).read_bytes()
    ref = by_id["make[n=a]"]["streams"]["stdout"]
    assert log[ref["offset"]:ref["offset"] + ref["length"]] == b"made a\n"
    assert "stderr" not in by_id["make[n=a]"]["streams"] and by_id["quiet"]["streams"] == {}
    # the exact script, again, from the records
    staged = rf.executed_command(made["command"], by_id["make[n=a]"]["staging"])
    assert "out/a.txt" not in staged.split(">")[-1] and staged.startswith("echo made a; echo a > ")


def test_sha256sums_pass_sha256sum_c_from_the_project_root_including_cached_outputs(tmp_path):
    root = _project(tmp_path)
    repropack(root, "run", check=True)
    (root / "repropack.toml").write_text((root / "repropack.toml").read_text().replace("cat {inputs}", "cat {inputs} {inputs}"))
    repropack(root, "run", check=True)  # reruns quiet only; make's outputs are cached
    sums = root / ".repropack" / "runs" / last_run_id(root) / rf.SUMS
    listed = sorted(line.split("  ", 1)[1] for line in sums.read_text().splitlines())
    assert listed == ["out/a.txt", "out/b.txt", "quiet.txt"]
    check = subprocess.run(["sha256sum", "-c", str(sums)], cwd=root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    _, instances, _ = _records(sums.parent)
    assert instances["make[n=a]"]["cached_from"] is not None and instances["quiet"]["cached_from"] is None


def test_a_failed_attempt_keeps_script_logs_and_metrics_under_failed(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "bad"
        run = "echo trying; echo broken >&2; exit 3"
        outputs = ["x.txt"]
        retries = 1
    """)
    done = repropack(root, "run")
    assert done.returncode != 0
    run = root / ".repropack" / "runs" / last_run_id(root)
    _, _, results = _records(run)
    assert [(r["attempt"], r["failure"], r["exit_status"]) for r in results] == [(1, "exit", 3), (2, "exit", 3)]
    for record in results:
        _check("result", record)
        folder = run / record["failed_dir"]
        assert sorted(os.listdir(folder)) == ["exit_code", "metrics.json", "script.sh", "stderr", "stdout"]
        assert (folder / "stderr").read_text() == "broken\n"
        assert record["streams"]["stdout"] == {"file": f"{record['failed_dir']}/stdout", "offset": 0, "length": 7}
        assert json.loads((folder / "metrics.json").read_text())["failure"] == "exit"
    assert "broken" in done.stderr  # the failure summary still shows the log's tail


def _tree(root: Path) -> set[str]:
    skip = {".repropack/envs", ".repropack/cache"}
    found = set()
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in skip]
        found.update(os.path.normpath(os.path.join(rel, name)) for name in dirs + files)
    return found


def test_issue10_a_thousand_trivial_instances_leave_fewer_than_100_files_and_folders(tmp_path):
    n = 1000
    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [[steps]]
        name = "make"
        run = "echo {{i}} > {{outputs}}"
        foreach = {{ i = [{", ".join(str(i) for i in range(n))}] }}
        outputs = ["out/{{i}}.txt"]
    """)
    before = _tree(root)
    repropack(root, "run", "-j", "2", check=True, timeout=600)
    made = _tree(root) - before - {"out"} - {f"out/{i}.txt" for i in range(n)}
    assert len(made) < 100, sorted(made)
    shown = repropack(root, "logs", "make:517", check=True).stdout
    assert "echo 517 > out/517.txt" in shown  # its command, as declared
    assert "wall" in shown and "peak rss" in shown  # its metrics
    assert _sha256(root / "out/517.txt") in shown  # its output's digest


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
