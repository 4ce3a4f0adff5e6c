import pytest

from repropack.errors import UsageError
from repropack.report import collect, to_record
from repropack.report.critical import critical_path
from repropack.report.model import Attempt, Instance

MANIFEST = """\
[project]
name = "demo"

[[steps]]
name = "prep"
run = "cat {inputs} > {outputs}"
foreach = { s = ["a", "b"] }
inputs = ["data/{s}.txt"]
outputs = ["work/{s}.txt"]

[[steps]]
name = "gather"
run = "cat {inputs} > {outputs}"
inputs = ["work/{s}.txt"]
outputs = ["all.txt"]
"""


def test_no_run_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no run recorded"):
        collect(tmp_path)


def test_attempts_metrics_and_failure_details(fake_run):
    run = fake_run()
    run.start(3)
    run.instance("prep[s=a]", "prep", 0.0, 2.0, cpu=1.5, rss=50_000_000, memory=100_000_000, outputs=["work/a.txt"])
    run.instance("boom", "boom", 0.5, 1.0, fail="exit", attempt=1, final=False)
    run.instance("boom", "boom", 2.0, 1.0, fail="oom", attempt=2, stderr="line1\nKilled\n", command="make it so")
    run.end("failed", at=4.0)
    report = collect(run.root)
    assert report.status == "failed" and report.wall == pytest.approx(4.0)
    prep = report.instances["prep[s=a]"]
    assert prep.state == "done" and prep.cpu == pytest.approx(1.5) and prep.peak_rss == 50_000_000
    assert prep.attempts[0].req_memory == 100_000_000
    boom = report.instances["boom"]
    assert boom.state == "failed" and boom.failure == "oom"
    assert [a.failure for a in boom.attempts] == ["exit", "oom"]
    assert boom.span == pytest.approx(2.5)  # first start to last end, the retry's wait included
    assert boom.command == "make it so"
    assert boom.log_tail["stderr"].endswith("Killed")
    step = {s.name: s for s in report.steps}["prep"]
    assert step.memory_use == pytest.approx(0.5) and step.cpu_efficiency == pytest.approx(0.75)
    record = to_record(report)
    assert record["counts"] == {"done": 1, "failed": 1}
    assert record["cpu_hours"] == pytest.approx((1.5 + 0.1 + 0.1) / 3600)


def test_deps_come_from_the_records_not_from_todays_manifest(fake_run):
    from repropack.run.journal import Journal

    run = fake_run(MANIFEST.replace('"work/{s}.txt"]\noutputs = ["all.txt"]', '"data/a.txt"]\noutputs = ["all.txt"]'))
    with Journal(run.root / ".repropack" / "journal.jsonl", "20251231T000000Z-000000") as earlier:
        earlier.append("done", id="prep[s=a]", step="prep", key="k", outputs={"work/a.txt": "0" * 64})
    run.start(3)
    run.journal.append("skipped", ids=["prep[s=a]"])
    run.instance("prep[s=b]", "prep", 0.0, 3.0, outputs=["work/b.txt"])
    run.instance("gather", "gather", 3.0, 1.0, inputs=["work/a.txt", "work/b.txt"], outputs=["all.txt"])
    run.end()
    report = collect(run.root)  # format 1: inputs matched with outputs, the cached producer's from the journal
    assert report.deps_source == "run-dirs"
    assert report.instances["gather"].deps == ["prep[s=a]", "prep[s=b]"]
    assert report.instances["prep[s=a]"].state == "cached"
    assert report.critical_path == ["prep[s=b]", "gather"]
    assert report.critical_seconds == pytest.approx(4.0)
    assert report.instances["gather"].critical and not report.instances["prep[s=a]"].critical


def test_deps_from_run_dirs_without_a_manifest(fake_run):
    run = fake_run()
    run.start(3)
    run.instance("a", "a", 0.0, 5.0, outputs=["x"])
    run.instance("b", "b", 0.0, 1.0, outputs=["y"])
    run.instance("c", "c", 5.0, 1.0, inputs=["x", "y"], outputs=["z"])
    run.end()
    report = collect(run.root)
    assert report.deps_source == "run-dirs"
    assert report.instances["c"].deps == ["a", "b"]
    assert report.critical_path == ["a", "c"]


def test_an_unfinished_run_is_crashed_and_its_instances_interrupted(fake_run):
    run = fake_run()
    run.start(1)
    run.journal.append("start", id="slow", attempt=1, time=1.0, req={"cpus": 2})
    run.journal.close()
    report = collect(run.root)
    assert report.status == "crashed"
    assert report.instances["slow"].state == "interrupted"
    assert report.instances["slow"].attempts[0].req_cpus == 2


def test_secrets_are_redacted_from_commands_logs_and_argv(fake_run, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "s3cr3t-value-123")
    run = fake_run()
    run.start(1, argv=["repropack", "run", "--param", "url=https://bob:hunter22@example.org/x"])
    run.instance("leak", "leak", 0.0, 1.0, fail="exit", command="curl -H 'Authorization: Bearer abc.def.ghi' $URL",
                 stderr="using s3cr3t-value-123 and https://u:pw12345@h.example/p\n")
    run.end("failed")
    report = collect(run.root)
    text = repr(to_record(report))
    for secret in ("s3cr3t-value-123", "hunter22", "pw12345", "abc.def.ghi"):
        assert secret not in text


def _inst(iid, start, span, deps=(), ran=True):
    attempts = [Attempt(1, "ok", start=start, end=start + span, wall=span)] if ran else []
    return Instance(iid, iid, "done" if ran else "cached", attempts=attempts, deps=list(deps))


def test_critical_path_goes_through_cached_links_and_prefers_the_longest_chain():
    instances = {
        "a": _inst("a", 0, 4),
        "b": _inst("b", 0, 1),
        "mid": _inst("mid", 0, 0, deps=["a"], ran=False),  # cached: weighs nothing, still links a to c
        "c": _inst("c", 4, 2, deps=["mid", "b"]),
        "d": _inst("d", 1, 3, deps=["b"]),
    }
    path, length = critical_path(instances)
    assert path == ["a", "c"] and length == pytest.approx(6)


def test_critical_path_of_nothing_that_ran_is_empty():
    assert critical_path({"x": _inst("x", 0, 0, ran=False)}) == ([], 0.0)
