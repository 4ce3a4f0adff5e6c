"""Evidence is kept (issue 10): after `repropack clean` and `clean --all`, status, logs and verify still
show a cached instance's command output, metrics and digests, whatever format the runner writes."""

from __future__ import annotations

import json

from runhelp import repropack, write_project

MANIFEST = """
[project]
name = "evidence"

[[steps]]
name = "count"
foreach = { s = ["a", "b"] }
inputs = ["data/{s}.txt"]
outputs = ["out/{s}.txt"]
run = "wc -c < {inputs} > {outputs}; echo counted {s} >&2"

[[steps]]
name = "gather"
inputs = ["out/{s}.txt"]
outputs = ["all.txt"]
run = "cat {inputs} > {outputs}"
"""


def test_clean_never_removes_what_an_up_to_date_result_rests_on(tmp_path):
    root = write_project(tmp_path / "p", MANIFEST, {"data/a.txt": "aaa\n", "data/b.txt": "bb\n"})
    repropack(root, "run", check=True)
    first = json.loads(repropack(root, "status", "--json", check=True).stdout)["run"]["run"]
    (root / "data/b.txt").write_text("bbbbbb\n")
    repropack(root, "run", check=True)  # count[s=b] and gather rerun; count[s=a] rests on the first run
    table = json.loads(repropack(root, "status", "--json", check=True).stdout)["instances"]
    assert table["count[s=a]"]["state"] == "cached" and table["count[s=a]"]["records"] == first
    for args in (("clean",), ("clean", "--all")):
        freed = json.loads(repropack(root, *args, "--json", check=True).stdout)
        assert {"path": f".repropack/runs/{first}", "reason": "evidence of 1 up-to-date instance(s)"} in freed["kept"]
        assert freed["files"] >= 0 and freed["bytes"] >= 0
        logs = repropack(root, "logs", "count:a", check=True).stdout
        assert "counted a" in logs and "output: out/a.txt  sha256 " in logs and "peak rss" in logs
        assert "cat out/a.txt out/b.txt" in repropack(root, "logs", "gather", "--script", check=True).stdout
        states = {e["state"] for e in json.loads(repropack(root, "status", "--json", check=True).stdout)["instances"].values()}
        assert states <= {"done", "cached"}
        assert repropack(root, "verify").returncode == 0
    assert json.loads(repropack(root, "run", "--dry-run", "--json", check=True).stdout)["to_run"] == []
