"""The report as a reproducibility record, opened in headless Chromium: rendered, no console error,
its sections present for a run with failures and for a fully cached one, the instance table
sortable and searchable, failed bars labelled; a screenshot is written for a person to look at
(REPROPACK_SCREENSHOT_DIR keeps it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runhelp import last_run_id, repropack, write_project

from repropack.run.records.reader import open_run

MANIFEST = """
[project]
name = "record-demo"
license = "CC0-1.0"

[params]
greeting = "hello"
api_token = "s3cr3t-token-value"

[[steps]]
name = "make"
run = "echo {params.greeting} {sample} > {outputs}"
foreach = { sample = ["a", "b", "c"] }
outputs = ["out/{sample}.txt"]

[[steps]]
name = "broken"
run = "cat {inputs} > /dev/null; echo 'cannot parse' >&2; exit 3"
inputs = ["out/{sample}.txt"]
outputs = ["out/all.txt"]

[[steps]]
name = "count"
run = "wc -c {inputs} > {outputs}"
inputs = ["out/a.txt"]
outputs = ["out/a.n"]
"""
SECTIONS = ("parameters", "environments", "dag", "outputs", "instances")


def _chromium(url: str, *args: str, profile: Path) -> subprocess.CompletedProcess:
    exe = next(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n))
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", "--window-size=1280,2400", *args, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]


def _render(root: Path, tmp: Path, name: str) -> str:
    page = root / ".repropack" / "reports" / f"{name}.html"
    repropack(root, "report", "-o", str(page), check=True)
    done = _chromium(page.as_uri(), "--dump-dom", profile=tmp / f"chrome-{name}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not _console_errors(done.stderr), _console_errors(done.stderr)
    shot = tmp / f"{name}.png"
    pic = _chromium(page.as_uri(), f"--screenshot={shot}", profile=tmp / f"chrome-{name}-shot")
    assert pic.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("REPROPACK_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
    return done.stdout


@pytest.mark.browser
def test_report_record_with_failures_and_fully_cached(tmp_path):
    root = write_project(tmp_path / "p", MANIFEST)
    assert repropack(root, "run", "--keep-going").returncode == 1
    dom = _render(root, tmp_path, "failed")
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    assert "s3cr3t-token-value" not in dom
    crate = (root / ".repropack" / "runs" / last_run_id(root) / "provenance" / "ro-crate-metadata.json").read_text()
    assert "s3cr3t-token-value" not in crate and '"name":"api_token","value":"***"' in crate
    if open_run(root, last_run_id(root)).format >= 2:  # format 1 kept no manifest digest to read defaults by
        assert re.search(r"<code>greeting</code></td><td><code>hello</code>", dom)
    rows = re.findall(r'<tr class="s-(\w[\w-]*)"><td><code>([^<]+)</code>', dom.split('id="instance-table"')[1])
    assert sorted(i for _, i in rows) == ["broken", "count", "make[sample=a]", "make[sample=b]", "make[sample=c]"]
    assert ("failed", "broken") in rows
    assert 'class="flabel"' in dom and "✗ exit · broken" in dom  # the failed bar carries its label
    assert re.search(r'id="instance-count"[^>]*>5 of 5 shown', dom)  # the search script ran
    assert "echo hello a &gt; out/a.txt" in dom or "echo {params.greeting}" in dom  # the command as written
    assert re.search(r'class="node s-failed" data-step="broken"', dom)
    for out in ("out/a.txt", "out/a.n"):
        assert f"<td><code>{out}</code></td>" in dom
    assert repropack(root, "run", "make", "count").returncode == 0  # every selected instance is up to date
    cached = _render(root, tmp_path, "cached")
    for section in SECTIONS:
        assert f'id="{section}"' in cached, section
