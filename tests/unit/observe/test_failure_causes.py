"""The cause table (repropack/observe/causes.toml), case by case with log lines as the tools print them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repropack.manifest.model import CausePattern
from repropack.observe.causes import builtin, diagnose_dir, parse_table

# (what the step printed, exit status, failure class, the cause expected); each a line captured from the tool
CAPTURED = [
    ("[12345.678901] Out of memory: Killed process 4242 (python3) total-vm:8123456kB, anon-rss:7000000kB", 137,
     "signal", "out of memory"),
    ("slurmstepd: error: Detected 1 oom_kill event in StepId=118.batch. Some of the step tasks have been OOM Killed.",
     0, "oom", "out of memory"),
    ("Traceback (most recent call last):\n  File \"big.py\", line 3, in <module>\n    x = [0] * 10**12\nMemoryError", 1,
     "exit", "out of memory"),
    ("numpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.45 TiB for an array with shape (1000000, 1000000)",
     1, "exit", "out of memory"),
    ("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\nAborted (core dumped)",
     134, "exit", "out of memory"),
    ("bash: fork: Cannot allocate memory", 254, "exit", "out of memory"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity)", 1,
     "exit", "GPU out of memory"),
    ("RuntimeError: CUDA error: out of memory", 1, "exit", "GPU out of memory"),
    ("cp: error writing 'out/big.bin': No space left on device", 1, "exit", "disk full"),
    ("OSError: [Errno 28] No space left on device: '/tmp/x'", 1, "exit", "disk full"),
    ("tar: out/a: Cannot write: Disk quota exceeded", 2, "exit", "quota exceeded"),
    ("OSError: [Errno 122] Disk quota exceeded", 1, "exit", "quota exceeded"),
    ("bash: line 1:  4242 Segmentation fault      (core dumped) ./solver in.dat", 139, "exit", "segmentation fault"),
    ("", 139, "exit", "segmentation fault"),  # nothing printed: the exit status says it
    ("", None, "signal", "killed by signal"),
    ("bash: line 1:  4242 Killed                  python3 train.py", 137, "exit", "killed by signal"),
    ("slurmstepd: error: *** JOB 77 ON node1 CANCELLED AT 2026-12-01T10:00:00 DUE TO TIME LIMIT ***", 0, "exit",
     "time limit"),
    ("", None, "timeout", "time limit"),
    ("bash: line 1: samtools: command not found", 127, "exit", "missing command"),
    ("/bin/sh: 1: bwa: not found", 127, "exit", "missing command"),
    ("", 127, "exit", "missing command"),
    ("bash: line 1: ./run.sh: Permission denied", 126, "exit", "permission denied"),
    ("PermissionError: [Errno 13] Permission denied: '/data/ref.fa'", 1, "exit", "permission denied"),
    ("curl: (6) Could not resolve host: example.org", 6, "exit", "network unreachable"),
    ("urllib.error.URLError: <urlopen error [Errno 101] Network is unreachable>", 1, "exit", "network unreachable"),
    ("socket.gaierror: [Errno -3] Temporary failure in name resolution", 1, "exit", "network unreachable"),
    ("cat: data/missing.txt: No such file or directory", 1, "exit", "missing file"),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'in.csv'", 1, "exit", "missing file"),
    ("Error in file(file, \"rt\") : cannot open the connection\ncannot open file 'x.csv'", 1, "exit", "missing file"),
    ("", None, "lost", "job lost"),
    ("", 0, "missing-output", "missing output"),
]


@pytest.mark.parametrize(("log", "exit_status", "failure", "cause"), CAPTURED,
                         ids=[f"{c[3]}-{i}" for i, c in enumerate(CAPTURED)])
def test_captured_line_names_its_cause(log, exit_status, failure, cause):
    found = builtin().match(failure=failure, exit_status=exit_status, log=log)
    assert found is not None and found.cause == cause, found
    assert found.fix


def test_every_entry_of_the_table_has_a_captured_case():
    named = {builtin().match(failure=f, exit_status=e, log=text).id for text, e, f, _ in CAPTURED}
    assert named == {sig.id for sig in builtin().signatures}


def test_a_step_that_exits_0_without_signature_gets_no_cause():
    assert builtin().match(failure="exit", exit_status=3, log="error: the model did not converge") is None
    assert builtin().match(failure="cancelled", exit_status=None, log="") is None


def test_the_order_disk_full_over_missing_file_and_class_over_log():
    log = "cat: x: No such file or directory\nwrite error: No space left on device"
    assert builtin().match(failure="exit", exit_status=1, log=log).cause == "disk full"
    # the runner enforced the time limit: that settles it, whatever the log shows
    assert builtin().match(failure="timeout", exit_status=143, log="cat: x: No such file or directory").cause \
        == "time limit"
    found = builtin().match(failure="exit", exit_status=1, log="No space left on device")
    assert found.evidence == "log: No space left on device"
    assert builtin().match(failure="exit", exit_status=127, log="").evidence == "exit status 127"


def test_manifest_patterns_come_first():
    table = builtin().with_user([CausePattern(pattern=r"license server .* unavailable", cause="license server down",
                                              fix="retry later")])
    found = table.match(failure="exit", exit_status=1,
                        log="FLEXlm: license server flex01 unavailable\nNo such file or directory")
    assert (found.cause, found.fix, found.id) == ("license server down", "retry later", "manifest-0")
    assert table.match(failure="exit", exit_status=1, log="No such file or directory").cause == "missing file"


def test_diagnose_reads_the_attempt_directory(tmp_path):
    attempt = tmp_path / "inst-1234" / "attempt-2"
    attempt.mkdir(parents=True)
    (attempt / "stderr").write_text("step 1 ok\n" * 1000 + "OSError: [Errno 28] No space left on device\n")
    (attempt / "exit_code").write_text("1\n")
    found = diagnose_dir(tmp_path / "inst-1234", "exit")
    assert found.cause == "disk full"
    (attempt / "stderr").write_text("")
    (attempt / "exit_code").write_text("127\n")
    assert diagnose_dir(tmp_path / "inst-1234", "exit").cause == "missing command"
    assert diagnose_dir(None, "oom").cause == "out of memory"


def test_a_malformed_table_is_refused():
    with pytest.raises(ValueError, match="format"):
        parse_table({"format": 99}, "t.toml")
    with pytest.raises(ValueError, match=r"cause\[0\]"):
        parse_table({"format": 1, "cause": [{"id": "x", "cause": "y", "fix": "z", "patterns": ["("]}]}, "t.toml")


_NOISE = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(derandomize=True, max_examples=200)
@given(before=_NOISE, after=_NOISE, exit_status=st.one_of(st.none(), st.integers(-1, 300)))
def test_disk_full_found_among_any_other_text(before, after, exit_status):
    # Any text around the line, any exit status: the line is found (other signatures may come first only
    # when the text itself holds one of an earlier entry, which the noise alphabet rarely makes).
    log = f"{before}\nwrite failed: No space left on device\n{after}"
    found = builtin().match(failure="exit", exit_status=exit_status, log=log)
    assert found is not None
    earlier = {"out-of-memory-kill", "gpu-out-of-memory", "python-memory-error", "cpp-bad-alloc", "cannot-allocate"}
    assert found.id == "disk-full" or found.id in earlier


def test_docs_list_every_entry_of_the_table():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "observability.md").read_text(encoding="utf-8")
    missing = [sig.id for sig in builtin().signatures if f"| `{sig.id}` | {sig.cause} |" not in doc]
    assert not missing, f"docs/observability.md does not list {missing}"
