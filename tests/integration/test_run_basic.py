"""The runner on the host: runs, skips, reruns only what changed, checks outputs."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from runhelp import journal, repropack, to_run, write_project

COUNT = """\
import sys
words = open(sys.argv[2], encoding="utf-8").read().split()
with open(sys.argv[3], "w", encoding="utf-8") as out:
    out.write(str(sum(1 for w in words if len(w) >= int(sys.argv[1]))) + "\\n")
"""
SUMMARY = """\
import pathlib, sys
for p in sys.argv[1:]:
    print(pathlib.Path(p).stem, pathlib.Path(p).read_text().strip(), sep="\\t")
"""
MANIFEST = """\
[project]
name = "basic"
[params]
min_length = 3
[[steps]]
name = "count"
run = "python3 scripts/count.py {params.min_length} {inputs} {outputs}"
foreach = { sample = ["alpha", "beta", "gamma"] }
inputs = ["data/{sample}.txt"]
outputs = ["results/{sample}.count"]
sources = ["scripts/count.py"]
[[steps]]
name = "summary"
run = "python3 scripts/summary.py {inputs} > {outputs}"
inputs = ["results/{sample}.count"]
outputs = ["results/summary.tsv"]
sources = ["scripts/summary.py"]
"""
FILES = {
    "scripts/count.py": COUNT,
    "scripts/summary.py": SUMMARY,
    "data/alpha.txt": "the quick brown fox jumps\n",
    "data/beta.txt": "a b c dddd eeee\n",
    "data/gamma.txt": "one two three four five six\n",
}


@pytest.fixture
def project(tmp_path):
    return write_project(tmp_path / "basic", MANIFEST, FILES)


def test_runs_then_skips_everything(project):
    first = repropack(project, "run", "--json", check=True)
    assert json.loads(first.stdout)["counts"]["done"] == 4
    assert (project / "results/summary.tsv").read_text() == "alpha\t5\nbeta\t2\ngamma\t6\n"
    second = repropack(project, "run", "--json", check=True)
    assert json.loads(second.stdout)["counts"] == {"done": 0, "skipped": 4, "failed": 0, "not-run": 0}
    assert to_run(project) == []
    assert repropack(project, "verify").returncode == 0


def test_run_directory_holds_script_logs_metrics_and_checksums(project):
    """Format 2: the run's records, no folder per instance; the script comes back from them."""
    repropack(project, "run", check=True)
    done = {r["id"]: r for r in journal(project) if r["t"] == "done"}
    run = project / done["count[sample=alpha]"]["dir"]
    results = {r["instance"]: r for r in map(json.loads, (run / "results" / "local.jsonl").read_text().splitlines())}
    metrics = results["count[sample=alpha]"]
    assert metrics["exit_status"] == 0 and metrics["failure"] is None
    assert metrics["wall"] > 0 and metrics["cpu"] >= 0 and metrics["peak_rss"] > 0
    assert metrics["requested"]["cpus"] == 1 and metrics["end"] >= metrics["start"]
    assert [o["path"] for o in metrics["outputs"]] == ["results/alpha.count"]
    assert "  results/alpha.count\n" in (run / "SHA256SUMS").read_text()
    script = repropack(project, "logs", "--script", "count:alpha", check=True).stdout
    assert script.splitlines()[2] == "set -euo pipefail"
    assert not (run / "scratch").exists()  # the slots (scratch and staging) are removed with the run's end
    assert not [p for p in run.iterdir() if p.is_dir() and p.name.startswith("count")]


def test_moved_copied_and_touched_project_reruns_nothing(project, tmp_path):
    repropack(project, "run", check=True)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(project, moved)
    assert to_run(moved) == []
    copied = tmp_path / "copied"
    shutil.copytree(moved, copied)  # new inodes, new mtimes
    for root, _, files in os.walk(copied):
        for name in files:
            os.utime(os.path.join(root, name), ns=(10**18, 10**18))
    assert to_run(copied) == []
    assert json.loads(repropack(copied, "run", "--json", check=True).stdout)["counts"]["skipped"] == 4


def test_changes_rerun_only_what_they_reach(project):
    repropack(project, "run", check=True)
    (project / "data/beta.txt").write_text("changed words here\n")
    plan = json.loads(repropack(project, "run", "--dry-run", "--json", check=True).stdout)["to_run"]
    reasons = {p["id"]: p["reasons"] for p in plan}
    assert reasons["count[sample=beta]"] == ["changed input data/beta.txt"]
    assert set(reasons) == {"count[sample=beta]", "summary"}
    repropack(project, "run", check=True)
    (project / "scripts/summary.py").write_text(SUMMARY + "# edited\n")
    plan = json.loads(repropack(project, "run", "--dry-run", "--json", check=True).stdout)["to_run"]
    assert plan == [{"id": "summary", "reasons": ["changed source scripts/summary.py"]}]
    assert set(to_run(project, "--param", "min_length=4")) == {
        "count[sample=alpha]", "count[sample=beta]", "count[sample=gamma]", "summary"}


def test_deleted_or_edited_output_reruns_its_producer(project):
    repropack(project, "run", check=True)
    (project / "results/gamma.count").write_text("999\n")
    plan = json.loads(repropack(project, "run", "--dry-run", "--json", check=True).stdout)["to_run"]
    assert plan[0] == {"id": "count[sample=gamma]", "reasons": ["output results/gamma.count modified"]}
    assert repropack(project, "verify").returncode == 1
    repropack(project, "run", check=True)
    assert (project / "results/gamma.count").read_text() == "6\n"
    assert repropack(project, "verify").returncode == 0


def test_unknown_param_is_refused(project):
    done = repropack(project, "run", "--param", "nope=1")
    assert done.returncode == 2
    assert "nope" in done.stderr


def test_verify_against_a_published_list(project):
    repropack(project, "run", check=True)
    import subprocess

    listing = subprocess.run(["sha256sum", "results/summary.tsv", "results/alpha.count"], cwd=project,
                             capture_output=True, text=True, check=True).stdout
    (project / "SHA256SUMS").write_text(listing)
    assert repropack(project, "verify", "--against", str(project / "SHA256SUMS")).returncode == 0
    (project / "results/alpha.count").write_text("0\n")
    bad = repropack(project, "verify", "--against", str(project / "SHA256SUMS"))
    assert bad.returncode == 1 and "results/alpha.count" in bad.stdout


def test_status_logs_and_clean(project):
    repropack(project, "run", check=True)
    repropack(project, "run", "--no-resume", check=True)
    status = repropack(project, "status", check=True).stdout
    assert "count" in status and "3 done" in status
    logs = repropack(project, "logs", "count:beta", check=True).stdout
    assert "scripts/count.py 3 data/beta.txt" in logs
    assert repropack(project, "logs", "count").returncode == 2  # three instances: name one
    cleaned = repropack(project, "clean", check=True).stdout
    assert cleaned.startswith("freed ")
    runs = [p.name for p in (project / ".repropack/runs").iterdir()]
    assert len(runs) == 2 and "latest" in runs  # the last run is kept
    assert to_run(project) == []  # the journal is kept: nothing reruns


def test_targets_from_and_until_select_instances(project):
    until = json.loads(repropack(project, "run", "--until", "count", "--json", check=True).stdout)
    assert until["counts"]["done"] == 3 and not (project / "results/summary.tsv").exists()
    only = json.loads(repropack(project, "run", "summary", "--json", check=True).stdout)
    assert only["counts"] == {"done": 1, "skipped": 3, "failed": 0, "not-run": 0}
    (project / "data/alpha.txt").write_text("x y z zz zzz\n")
    after = json.loads(repropack(project, "run", "--from", "summary", "--json", check=True).stdout)
    assert set(after["instances"]) == {"summary"}  # count[alpha] is outside the selection: not rerun
    assert repropack(project, "run", "nosuchstep").returncode == 2


def test_gather_through_an_inputs_list(tmp_path):
    n = 300
    root = write_project(tmp_path / "g", f"""
        [project]
        name = "g"
        [[steps]]
        name = "make"
        run = "echo {{n}} > {{outputs}}"
        foreach = {{ n = [{", ".join(f'"{i}"' for i in range(n))}] }}
        outputs = ["parts/{{n}}.txt"]
        [[steps]]
        name = "gather"
        run = "xargs cat < {{inputs:list}} > {{outputs}}"
        inputs = ["parts/{{n}}.txt"]
        outputs = ["all.txt"]
    """)
    repropack(root, "run", "-j", "2", check=True)
    assert (root / "all.txt").read_text().split() == [str(i) for i in range(n)]
    assert to_run(root) == []


def test_steps_start_with_default_signal_dispositions(tmp_path):
    # Python ignores SIGPIPE and SIGXFSZ; a step must not inherit that (a container would not)
    root = write_project(tmp_path / "s", """
        [project]
        name = "s"
        [[steps]]
        name = "sig"
        run = "grep SigIgn /proc/$$/status > {outputs}"
        outputs = ["sig.txt"]
    """)
    repropack(root, "run", check=True)
    ignored = int((root / "sig.txt").read_text().split()[1], 16)
    assert ignored & (1 << 12) == 0  # SIGPIPE (13)
    assert ignored & (1 << 24) == 0  # SIGXFSZ (25)
