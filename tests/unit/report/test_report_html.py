import json
import re

from repropack.report import collect, render_html
from repropack.report.html import MAX_BARS, _timeline_data, fmt_bytes, fmt_seconds
from repropack.report.model import Attempt, Instance, Report
from repropack.redact import Redactor

EVIL = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'


def _page(fake_run, **kw):
    run = fake_run()
    run.start(2)
    run.instance(f"ok[v={EVIL}]", "ok", 0.0, 2.0, memory=20_000_000)
    run.instance("bad", "bad", 0.5, 1.0, fail="exit", stderr=f"{EVIL}\n", command=f"echo '{EVIL}'")
    run.end("failed", at=3.0)
    return render_html(collect(run.root, **kw))


def test_text_from_the_run_is_escaped_everywhere(fake_run):
    page = _page(fake_run)
    assert "<img" not in page and '<script>alert' not in page
    assert page.count("<script") == 2  # the data block and the report's own script, nothing injected
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data and ">" not in data
    bars = json.loads(data)["bars"]
    assert {b[0] for b in bars} == {f"ok[v={EVIL}]", "bad"}  # the ids survive, intact, as data


def test_the_page_is_self_contained(fake_run):
    page = _page(fake_run)
    assert not re.search(r'\b(?:src|href)\s*=\s*["\']?(?:https?:)?//', page)
    assert "@import" not in page and "url(http" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_failures_show_class_message_command_and_log(fake_run):
    page = _page(fake_run)
    section = page[page.index('id="failures"'):page.index('id="timeline-section"')]
    assert 'data-id="bad"' in section and ">exit<" in section and "exit happened" in section
    assert "&lt;/script&gt;" in section  # the log tail, escaped
    assert "repropack logs bad" in section


def test_secrets_never_reach_the_page(fake_run):
    run = fake_run()
    run.start(1, argv=["repropack", "run", "--param", "key=TOPSECRET-42"])
    run.instance("bad", "bad", 0.0, 1.0, fail="exit", stderr="token TOPSECRET-42\n", stdout="TOPSECRET-42",
                 command="use TOPSECRET-42")
    run.end("failed")
    page = render_html(collect(run.root, redactor=Redactor(["TOPSECRET-42"])))
    assert "TOPSECRET-42" not in page and page.count("***") >= 3


def test_timeline_keeps_failed_and_critical_bars_when_there_are_too_many():
    instances = {}
    for n in range(MAX_BARS + 10):
        inst = Instance(f"i{n}", "s", "done", attempts=[Attempt(1, "ok", start=float(n), end=n + 1.0 + n % 7, wall=1.0)])
        instances[inst.id] = inst
    instances["i0"].state = "failed"
    instances["i1"].critical = True
    report = Report("p", "r", "failed", 0.0, 100.0, instances=instances)
    data = _timeline_data(report, ["s"], {"s": "#000"})
    ids = {b[0] for b in data["bars"]}
    assert len(ids) == MAX_BARS and data["omitted"] == 10 and {"i0", "i1"} <= ids


def test_formatting():
    assert fmt_seconds(0.0004) == "<1 ms" and fmt_seconds(0.25) == "250 ms" and fmt_seconds(75) == "1 min 15 s"
    assert fmt_seconds(7322) == "2 h 02 min" and fmt_seconds(None) == "–"
    assert fmt_bytes(999) == "999 B" and fmt_bytes(1_500_000) == "1.5 MB" and fmt_bytes(None) == "–"
