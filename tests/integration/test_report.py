"""`repropack report` on a real run (the real runner, one failing step, --keep-going), opened in
headless Chromium: the DOM the page's script builds is what a reader sees."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runhelp import repropack, write_project

MANIFEST = """
    [project]
    name = "report-demo"

    [[steps]]
    name = "prep"
    run = "sleep 0.2; cat {inputs} > {outputs}"
    foreach = { sample = ["a", "b", "c", "d"] }
    inputs = ["data/{sample}.txt"]
    outputs = ["work/{sample}.txt"]
    resources = { memory = "100MB" }

    [[steps]]
    name = "crunch"
    run = "sleep 0.3; wc -c {inputs} > {outputs}"
    foreach = { sample = ["a", "b", "c", "d"] }
    inputs = ["work/{sample}.txt"]
    outputs = ["work/{sample}.n"]

    [[steps]]
    name = "flaky"
    run = "echo 'cannot <b>parse</b> input' >&2; exit 3"
    outputs = ["work/flaky.txt"]

    [[steps]]
    name = "gather"
    run = "cat {inputs} > {outputs}"
    inputs = ["work/{sample}.n"]
    outputs = ["results/all.txt"]
"""
RAN = 4 + 4 + 1 + 1


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = write_project(tmp_path_factory.mktemp("report") / "p", MANIFEST,
                         {f"data/{s}.txt": f"text {s}\n" for s in "abcd"})
    done = repropack(root, "run", "--keep-going", "-j", "2")
    assert done.returncode == 1, done.stderr  # flaky fails; everything else still runs
    assert (root / "results/all.txt").exists()
    return root


def test_report_json_matches_the_run(project, tmp_path):
    out = tmp_path / "r.html"
    done = repropack(project, "report", "-o", str(out), "--json", check=True)
    data = json.loads(done.stdout)
    assert data["html"] == str(out) and out.exists()
    assert data["status"] == "failed" and data["counts"] == {"done": RAN - 1, "failed": 1}
    assert data["instances"]["flaky"]["failure"] == "exit"
    assert "cannot <b>parse</b> input" in data["instances"]["flaky"]["log_tail"]["stderr"]
    assert data["critical_path"][0].startswith("prep[") and data["critical_path"][-1] == "gather"
    assert [data["critical_path"][1]] == [p for p in data["critical_path"] if p.startswith("crunch[")]
    assert data["cpu_hours"] > 0 and data["deps_source"] in ("records", "run-dirs")
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["prep"]["req_memory"] == 100_000_000 and steps["prep"]["peak_rss_max"] > 0


def test_report_default_path_and_plain_output(project):
    done = repropack(project, "report", check=True)
    path = Path(done.stdout.strip().rsplit(": ", 1)[1])
    assert path.parent == project / ".repropack" / "reports" and path.exists()
    assert "1 failed" in done.stdout


def test_no_run_yet_is_one_clear_error(tmp_path):
    root = write_project(tmp_path / "empty", '[project]\nname = "e"\n')
    done = repropack(root, "report")
    assert done.returncode == 2 and "no run recorded" in done.stderr
    assert not (root / ".repropack" / "reports").exists()


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.failures: list[str] = []
        self.paths = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "rect" and "bar" in classes:
            self.bars.append(a)
        if tag == "article" and "failure" in classes:
            self.failures.append(a.get("data-id", ""))
        if tag == "path" and "critline" in classes:
            self.paths += 1


def _chromium(*args: str, profile: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    exe = next(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n))
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--window-size=1280,1600", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.mark.browser
def test_chromium_shows_timeline_failures_and_critical_path(project, tmp_path):
    page = tmp_path / "report.html"
    repropack(project, "report", "-o", str(page), check=True)
    done = _chromium("--dump-dom", page.as_uri(), profile=tmp_path / "chrome")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    # one bar per instance that ran, built by the page's script
    assert len(dom.bars) == RAN, done.stdout[-3000:]
    assert len({b["data-id"] for b in dom.bars}) == RAN
    failed = [b for b in dom.bars if "failed" in b["class"].split()]
    assert [b["data-id"] for b in failed] == ["flaky"]
    critical = sorted(b["data-id"].split("[")[0] for b in dom.bars if "crit" in b["class"].split())
    assert critical == ["crunch", "gather", "prep"]
    assert dom.paths == 1
    assert dom.failures == ["flaky"]
    assert "cannot &lt;b&gt;parse&lt;/b&gt; input" in done.stdout  # the log tail, shown as text
    assert re.search(r"<b>parse</b>", done.stdout) is None
    assert re.search(r'id="timeline-note"[^>]*>10 bars over', done.stdout)


@pytest.mark.browser
def test_chromium_screenshot_is_a_real_picture(project, tmp_path):
    page = tmp_path / "report.html"
    repropack(project, "report", "-o", str(page), check=True)
    shot = tmp_path / "report.png"
    done = _chromium(f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "chrome")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a blank page compresses to a few kB
