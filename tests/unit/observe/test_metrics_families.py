"""The metric families read from a journal written by hand (no run needed), and promtool's verdict on them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from repropack.observe.live import JournalFollower
from repropack.observe.metrics import MetricsServer, RunCollector, parse_address
from repropack.run.journal import Journal

PLANNED = {"align[s=a]": "align", "align[s=b]": "align", "align[s=c]": "align", "align[s=d]": "align",
           "sum": "sum"}


def _journal(root, run="R1"):
    journal = Journal(root / ".repropack" / "journal.jsonl", run)
    journal.append("run", start=100.0, profile=None, instances=5)
    journal.append("skipped", ids=["align[s=d]"])
    journal.append("start", id="align[s=a]", attempt=1, time=101.0, backend="local", req={"memory": 1 << 30})
    journal.append("attempt", id="align[s=a]", attempt=1, status="ok",
                   metrics={"start": 101.0, "end": 103.0, "wall": 2.0, "peak_rss": 300 << 20})
    journal.append("done", id="align[s=a]", step="align", start=101.0, end=103.0, attempts=1)
    journal.append("start", id="align[s=b]", attempt=1, time=101.0, backend="local")
    journal.append("attempt", id="align[s=b]", attempt=1, status="failed", failure="oom",
                   metrics={"start": 101.0, "end": 101.5, "wall": 0.5, "peak_rss": 2 << 30})
    journal.append("start", id="align[s=b]", attempt=2, time=102.0, backend="local")
    journal.append("attempt", id="align[s=b]", attempt=2, status="failed", failure="exit",
                   metrics={"start": 102.0, "end": 102.2, "wall": 0.2})
    journal.append("failed", id="align[s=b]", step="align", failure="exit", message="exit code 1", attempts=2)
    journal.append("start", id="align[s=c]", attempt=1, time=104.0, backend="local")
    journal.flush()
    return journal


def _samples(server):
    text = server.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, out


def test_families_follow_the_journal(tmp_path):
    journal = _journal(tmp_path)
    server = MetricsServer(RunCollector(tmp_path, "R1", profile="local", backend="local", planned=PLANNED))
    text, got = _samples(server)

    def inst(step, state):
        return got[("repropack_instances", (("state", state), ("step", step)))]

    assert (inst("align", "done"), inst("align", "failed"), inst("align", "running"), inst("align", "cached"),
            inst("align", "queued")) == (1, 1, 1, 1, 0)
    assert (inst("sum", "queued"), inst("sum", "running")) == (1, 0)
    assert got[("repropack_attempts_total", (("failure", "oom"), ("step", "align")))] == 1
    assert got[("repropack_attempts_total", (("failure", "exit"), ("step", "align")))] == 1
    assert got[("repropack_attempts_total", (("failure", "none"), ("step", "align")))] == 1
    assert got[("repropack_instance_duration_seconds_count", (("step", "align"),))] == 1  # successful only
    assert got[("repropack_instance_duration_seconds_sum", (("step", "align"),))] == 2.0
    assert got[("repropack_instance_duration_seconds_bucket", (("le", "1.0"), ("step", "align")))] == 0
    assert got[("repropack_instance_duration_seconds_bucket", (("le", "5.0"), ("step", "align")))] == 1
    assert got[("repropack_instance_peak_memory_bytes_count", (("step", "align"),))] == 2
    assert got[("repropack_run_info", (("backend", "local"), ("profile", "local"), ("run", "R1")))] == 1
    # a scrape later sees what was appended since
    journal.append("attempt", id="align[s=c]", attempt=1, status="ok", metrics={"wall": 7.0})
    journal.append("done", id="align[s=c]", step="align", attempts=1)
    journal.append("not-run", ids=["sum"])
    journal.append("end", status="failed", time=110.0)
    journal.close()
    _, got = _samples(server)
    assert got[("repropack_instances", (("state", "done"), ("step", "align")))] == 2
    assert got[("repropack_instances", (("state", "queued"), ("step", "sum")))] == 0
    assert got[("repropack_instance_duration_seconds_count", (("step", "align"),))] == 2


def test_promtool_accepts_the_exposition(tmp_path):
    if shutil.which("promtool") is None:
        from _engines import require_engine

        require_engine("prometheus")
    _journal(tmp_path).close()
    server = MetricsServer(RunCollector(tmp_path, "R1", profile="hpc", backend="slurm", planned=PLANNED))
    done = subprocess.run(["promtool", "check", "metrics"], input=server.exposition(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_the_named_run_is_counted_and_a_torn_line_waits(tmp_path):
    _journal(tmp_path, run="OTHER").close()
    path = tmp_path / ".repropack" / "journal.jsonl"
    follower = JournalFollower(tmp_path, "R1")
    assert follower.poll() is None  # another run's records only
    with path.open("ab") as handle:
        handle.write(b'{"v":1,"t":"run","run":"R1","start":1}\n{"v":1,"t":"start","run":"R1","id":"x","att')
    live = follower.poll()
    assert live is not None and live.instances == {}
    with path.open("ab") as handle:
        handle.write(b'empt":1,"time":2}\n')
    assert follower.poll().instances["x"].state == "running"
    path.write_bytes(b'{"v":1,"t":"run","run":"R1","start":1}\n')  # rewritten (compaction): read again
    assert follower.poll().instances == {}


@pytest.mark.parametrize(("text", "parsed"), [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("::1", 0)),
                                              ("localhost:80", ("localhost", 80))])
def test_parse_address(text, parsed):
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["9464", ":9464", "host:", "host:http", "host:70000"])
def test_parse_address_refuses(text):
    with pytest.raises(ValueError):
        parse_address(text)
