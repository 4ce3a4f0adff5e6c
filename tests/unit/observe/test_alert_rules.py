"""AlertRules on hand-written journals: which alerts, each once, with the clock given (no waiting)."""

from __future__ import annotations

from repropack.manifest.model import Alerts
from repropack.observe.alerts import Alert, AlertRules, Delivery
from repropack.observe.live import JournalFollower
from repropack.redact import Redactor
from repropack.run.journal import Journal


def _run(tmp_path, records):
    journal = Journal(tmp_path / ".repropack" / "journal.jsonl", "R")
    journal.append("run", start=0.0)
    for kind, fields in records:
        journal.append(kind, **fields)
    journal.close()
    return JournalFollower(tmp_path, "R").poll()


def _ok(iid, wall, start=0.0, **metrics):
    return [("start", {"id": iid, "attempt": 1, "time": start}),
            ("attempt", {"id": iid, "attempt": 1, "status": "ok", "metrics": {"wall": wall, **metrics}}),
            ("done", {"id": iid, "step": iid.split("[")[0], "attempts": 1})]


def test_slow_instance_alerted_once_and_only_past_k_times_the_median(tmp_path):
    records = _ok("w[n=1]", 1.0) + _ok("w[n=2]", 2.0) + _ok("w[n=3]", 1.5)
    records.append(("start", {"id": "w[n=4]", "attempt": 1, "time": 100.0}))
    live = _run(tmp_path, records)
    rules = AlertRules(Alerts(webhooks=("http://x",)), tmp_path, Redactor())
    assert rules.check(live, now=104.0) == []  # 4 s < 3 x 1.5 s
    alerts = rules.check(live, now=105.0)
    assert [(a.kind, a.key, a.fields["instance"]) for a in alerts] == [("anomaly", "slow:w[n=4]", "w[n=4]")]
    assert rules.check(live, now=200.0) == []  # sent once


def test_too_few_samples_no_median(tmp_path):
    live = _run(tmp_path, _ok("w[n=1]", 1.0) + [("start", {"id": "w[n=2]", "attempt": 1, "time": 0.0})])
    assert AlertRules(Alerts(webhooks=("http://x",)), tmp_path, Redactor()).check(live, now=1e6) == []


def test_memory_rate_and_end(tmp_path):
    records = _ok("m", 1.0, peak_rss=95, requested={"memory": 100}) + _ok("n", 1.0, peak_rss=50,
                                                                          requested={"memory": 100})
    for iid in ("f1", "f2", "f3"):
        records += [("start", {"id": iid, "attempt": 1, "time": 0.0}),
                    ("attempt", {"id": iid, "attempt": 1, "status": "failed", "failure": "exit"}),
                    ("failed", {"id": iid, "step": "f", "failure": "exit", "message": "exit code 1"})]
    records.append(("end", {"status": "failed", "time": 9.0}))
    live = _run(tmp_path, records)
    alerts = AlertRules(Alerts(webhooks=("http://x",), on=("anomaly", "end")), tmp_path, Redactor()).check(live)
    assert sorted(a.key for a in alerts) == ["end", "failure-rate", "memory:m"]
    end = next(a for a in alerts if a.kind == "end")
    assert end.fields["counts"] == {"done": 2, "failed": 3} and "ended failed: 2 done, 3 failed" in end.text


def test_payload_is_slack_and_mattermost_shaped():
    body = Alert("end", "end", "repropack run R ended ok: 1 done", {"run": "R"}).payload("proj")
    assert body["text"].startswith("repropack run R") and body["username"] == "repropack"
    assert body["repropack"] == {"kind": "end", "project": "proj", "run": "R"}


def test_webhooks_from_the_environment(monkeypatch):
    lines = []
    delivery = Delivery(Alerts(webhooks_env=("HOOK", "UNSET_HOOK")), project="p", warn=lines.append,
                        environ={"HOOK": "http://127.0.0.1:9/never"})
    assert len(delivery._queues) == 1
    delivery.close()
