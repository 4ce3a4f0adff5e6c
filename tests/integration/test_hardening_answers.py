"""Issue 8 defect 11: the answers repropack gives are right and safe to print.

`status` tells done, cached, failed, not-run, unknown and never-run apart and says when a run
did not end; `env run` passes a signal on as 128 + N; user data (foreach values, ids, log
tails) reaches the terminal with control characters escaped; `verify --against` refuses
paths outside the project; a `--param` renders as typed. Through the commands only.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from runhelp import CLI, last_run_id, processes_with_marker, repropack, start, write_project

STEPS = """
[project]
name = "p"
[params]
mode = "ok"
[[steps]]
name = "ok"
run = "echo {x} > {outputs}"
foreach = { x = ["1", "2"] }
outputs = ["out/{x}.txt"]
[[steps]]
name = "bad"
run = "test {params.mode} = ok && echo b > {outputs}"
outputs = ["out/bad.txt"]
[[steps]]
name = "after"
run = "cat {inputs} > {outputs}"
inputs = ["out/bad.txt"]
outputs = ["out/after.txt"]
[[steps]]
name = "other"
run = "echo o > {outputs}"
outputs = ["out/other.txt"]
"""


def _status(root):
    return json.loads(repropack(root, "status", "--json", check=True).stdout)


def _states(root):
    return {iid: entry["state"] for iid, entry in _status(root)["instances"].items()}


def test_defect11_status_tells_done_cached_failed_not_run_unknown_and_never_run(tmp_path):
    root = write_project(tmp_path / "p", STEPS)
    repropack(root, "run", check=True)
    first = last_run_id(root)
    assert set(_states(root).values()) == {"done"}

    failed = repropack(root, "run", "--keep-going", "--param", "mode=fail")
    assert failed.returncode == 1
    assert _states(root) == {"ok[x=1]": "cached", "ok[x=2]": "cached", "other": "cached",
                             "bad": "failed", "after": "not-run"}
    text = repropack(root, "status").stdout
    assert "ended failed" in text and "1 not-run" in text and "cached" in text
    report = json.loads(repropack(root, "report", "-o", str(tmp_path / "r.html"), "--json").stdout)
    assert report["counts"] == {"cached": 3, "failed": 1, "not-run": 1}

    with open(root / "repropack.toml", "a", encoding="utf-8") as handle:
        handle.write('[[steps]]\nname = "new"\nrun = "echo n > {outputs}"\noutputs = ["out/new.txt"]\n')
    repropack(root, "run", "other", "--no-resume", check=True)
    status = _status(root)
    states = {iid: entry["state"] for iid, entry in status["instances"].items()}
    assert states == {"other": "done", "ok[x=1]": "unknown", "ok[x=2]": "unknown", "bad": "unknown",
                      "after": "unknown", "new": "never-run"}
    assert status["instances"]["ok[x=1]"]["last_done"] == first
    assert status["run"]["ended"] is True and status["run"]["status"] == "ok"
    assert status["counts"] == {"done": 1, "unknown": 4, "never-run": 1}


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_defect11_status_of_a_killed_run_says_it_did_not_end(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "quick"
        run = "echo q > {outputs}"
        outputs = ["out/q.txt"]
        [[steps]]
        name = "slow"
        run = "sleep 60; cat {inputs} > {outputs}"
        inputs = ["out/q.txt"]
        outputs = ["out/slow.txt"]
        [[steps]]
        name = "late"
        run = "cat {inputs} > {outputs}"
        inputs = ["out/slow.txt"]
        outputs = ["out/late.txt"]
    """)
    runner = start(root, "run", "-j", "1")
    try:
        assert _wait_for(lambda: _states(root).get("slow") == "running"), runner.stderr
    finally:
        runner.kill()  # SIGKILL: no end record
        runner.communicate()
    assert _wait_for(lambda: not processes_with_marker(last_run_id(root)), 10)
    status = _status(root)
    assert status["run"]["ended"] is False and status["run"]["status"] == "did-not-end"
    assert {iid: e["state"] for iid, e in status["instances"].items()} == {
        "quick": "done", "slow": "interrupted", "late": "never-run"}
    text = repropack(root, "status").stdout
    assert "did not end" in text


def test_defect11_env_run_passes_a_signal_on_as_128_plus_n(tmp_project, tmp_path):
    root = tmp_project("conda-local")
    env = {**os.environ, "REPROPACK_CACHE": str(tmp_path / "cache")}
    env.pop("REPROPACK_BASE_OVERRIDE", None)
    for args in (("lock",), ("fetch",), ("env", "create")):
        repropack(root, *args, check=True, env=env)
    cases = {"kill -9 $$": 137, "kill -TERM $$": 143, "exit 3": 3}
    for script, expected in cases.items():
        done = subprocess.run([*CLI, "env", "run", "-C", str(root), "--", "sh", "-c", script],
                              capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == expected, (script, done.returncode, done.stderr)


ESCAPES = "e\u001b[2J\u001b]0;owned\u0007x\u202e"


def _toml_escaped(text):
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _no_raw_escapes(text):
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, repr(text)


def test_defect11_escape_sequences_in_values_reach_the_terminal_escaped(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "show"
        run = "printf '%s\\\\n' {s} >&2; test {s} = ok && echo {s} > {outputs}"
        foreach = { s = ["ok", "VALUE"] }
        outputs = ["out/{s}.txt"]
    """.replace("VALUE", _toml_escaped(ESCAPES)))
    dry = repropack(root, "run", "--dry-run")
    _no_raw_escapes(dry.stdout + dry.stderr)
    assert "\\x1b[2J" in dry.stdout
    done = repropack(root, "run")
    assert done.returncode == 1
    _no_raw_escapes(done.stdout + done.stderr)
    assert "failed: show[s=e\\x1b[2J\\x1b]0;owned\\x07x\\u202e]" in done.stderr
    assert "e\\x1b[2J" in done.stderr.split("--- stderr", 1)[1]  # the log tail too
    status = repropack(root, "status")
    _no_raw_escapes(status.stdout + status.stderr)
    assert "\\x1b" in status.stdout
    logs = repropack(root, "logs", "show:" + ESCAPES)
    assert logs.returncode == 0, logs.stderr
    _no_raw_escapes(logs.stdout + logs.stderr)
    assert "\\x1b[2J" in logs.stdout
    missing = repropack(root, "logs", "show:nope\u001b[31m")
    assert missing.returncode != 0
    _no_raw_escapes(missing.stderr)


@pytest.fixture
def verified(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [[steps]]
        name = "one"
        run = "echo one > {outputs}"
        outputs = ["out/one.txt"]
    """)
    repropack(root, "run", check=True)
    return root


def _sha(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("line_path, why", [
    ("/etc/passwd", "is absolute"),
    ("../../../etc/hostname", "escapes the project folder"),
    ("out/../../etc/hostname", "escapes the project folder"),
    ("hostlink/hostname", "a symbolic link leading outside the project"),
    ("passwd", "a symbolic link leading outside the project"),
])
def test_defect11_verify_against_refuses_paths_outside_the_project(verified, line_path, why):
    root = verified
    os.symlink("/etc", root / "hostlink")
    os.symlink("/etc/passwd", root / "passwd")
    target = {"/etc/passwd": "/etc/passwd", "passwd": "/etc/passwd"}.get(line_path, "/etc/hostname")
    sums = root / "SHA256SUMS"
    sums.write_text(f"{_sha(root / 'out/one.txt')}  out/one.txt\n{_sha(target)}  {line_path}\n")
    done = repropack(root, "verify", "--against", str(sums))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {sums}:2: {line_path!r}") and why in lines[0], lines[0]
    assert done.stdout == ""


def test_defect11_verify_against_accepts_normalised_paths_inside(verified):
    sums = verified / "SHA256SUMS"
    sums.write_text(f"{_sha(verified / 'out/one.txt')}  ./out//one.txt\n")
    done = repropack(verified, "verify", "--against", str(sums), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] == ["out/one.txt"]


def test_defect11_param_values_render_as_typed(tmp_path):
    root = write_project(tmp_path / "p", """
        [project]
        name = "p"
        [params]
        n = 1
        label = "x"
        ratio = 0.5
        [[steps]]
        name = "use"
        run = "echo {params.n} {params.label} {params.ratio} > {outputs}"
        outputs = ["out/use.txt"]
    """)
    repropack(root, "run", "--param", "n=01", "--param", "label=007", "--param", "ratio=0.50", check=True)
    assert (root / "out/use.txt").read_text() == "01 007 0.50\n"
    repropack(root, "run", "--param", "n=+7", check=True)
    assert (root / "out/use.txt").read_text() == "+7 x 0.5\n"
    for bad in ("1_000", "\u0661", "1.0", ""):
        done = repropack(root, "run", "--param", f"n={bad}")
        assert done.returncode == 2, (bad, done.stderr)
        assert "expected an integer" in done.stderr
