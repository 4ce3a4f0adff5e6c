"""Issue 8 defect 2, the race: a link flipped in a loop while the next steps start never reaches VICTIM.

A thread swaps ``out/sub`` between a real folder and a link to VICTIM (an atomic renameat2
RENAME_EXCHANGE, thousands of times a second) while the runner prepares, mounts and moves the
outputs of many instances under ``out/sub/``. Whatever moment each operation hits, VICTIM's
sentinel (inode, size, mtime, sha256 of every entry) is unchanged afterwards; the instances that
met the link were refused with a message, the others wrote inside the project.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

import pytest
from runhelp import sentinel, share_sif, start, status_json, write_project

RENAME_EXCHANGE = 2
AT_FDCWD = -100
REFUSED = ("symbolic link", "is not the folder the runner checked", "is not a directory")


class Flipper(threading.Thread):
    """Swaps two entries again and again until stopped; counts the swaps."""

    def __init__(self, a, b):
        super().__init__(daemon=True)
        self.a, self.b = os.fsencode(a), os.fsencode(b)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.stop = threading.Event()
        self.flips = 0

    def run(self):
        while not self.stop.is_set():
            if self.libc.renameat2(AT_FDCWD, self.a, AT_FDCWD, self.b, RENAME_EXCHANGE) != 0:
                raise OSError(ctypes.get_errno(), "renameat2")
            self.flips += 1
            time.sleep(0.0002)


def _setup(tmp_path, request, runtime, count):
    victim = tmp_path / "victim"
    victim.mkdir()
    for n in range(count):
        (victim / f"f{n}").write_text(f"precious {n}\n")
        (victim / f"g{n}").write_text(f"precious {n}\n")
    image = request.getfixturevalue("base_image") if runtime != "host" else "none"
    # host steps write nothing themselves (a host step is not confined, it could follow the link on its
    # own): what is checked there is the runner's removing, making and moving
    in_place = "true" if runtime == "host" else "echo {n} > out/sub/f{n}"
    values = ", ".join(f'"{n}"' for n in range(count))
    root = write_project(tmp_path / "p", f"""
        [project]
        name = "p"
        [image]
        name = "{image}"
        [[steps]]
        name = "inplace"
        run = "{in_place}"
        foreach = {{ n = [{values}] }}
        outputs = ["out/sub/f{{n}}"]
        [[steps]]
        name = "staged"
        run = "echo {{n}} > {{outputs}}"
        foreach = {{ n = [{values}] }}
        outputs = ["out/sub/g{{n}}"]
        [profiles.docker]
        runtime = "docker"
        [profiles.apptainer]
        runtime = "apptainer"
        apptainer-flags = ["--userns"]
    """)
    if runtime == "apptainer":
        share_sif(root, request.getfixturevalue("base_sif"))
    (root / "out/sub").mkdir(parents=True)
    os.symlink(victim, root / "out/.alt")
    return root, victim


@pytest.mark.parametrize("runtime, count", [
    pytest.param("host", 100, id="host"),
    pytest.param("docker", 8, id="docker", marks=pytest.mark.docker),
    pytest.param("apptainer", 3, id="apptainer", marks=[pytest.mark.docker, pytest.mark.apptainer]),
])
def test_defect02_a_link_flipped_while_steps_start_never_reaches_outside(tmp_path, request, runtime, count):
    root, victim = _setup(tmp_path, request, runtime, count)
    before = sentinel(victim)
    profile = [] if runtime == "host" else ["--profile", runtime]
    runner = start(root, "run", "--keep-going", "-j", "2", *profile)
    flipper = Flipper(root / "out/sub", root / "out/.alt")
    try:
        # flips from the moment the run has passed its start-up check (which would refuse it whole)
        deadline = time.monotonic() + 60
        while not (root / ".repropack/runs/latest").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        flipper.start()
        _, stderr = runner.communicate(timeout=600)
    finally:
        runner.kill()
        flipper.stop.set()
        if flipper.is_alive():
            flipper.join()
    assert sentinel(victim) == before
    assert "Traceback" not in stderr, stderr
    assert flipper.flips > 100
    instances = status_json(root)["instances"]
    assert len(instances) == 2 * count
    refused = [e for e in instances.values() if e.get("state") == "failed" and any(r in (e.get("message") or "")
                                                                                  for r in REFUSED)]
    assert refused, "the flips never met the runner: the race was not exercised"
    for iid, entry in instances.items():
        # done, landed in the real folder wherever the flips had put it; status says "changed" when the
        # last flip left out/sub a link leading outside (the output is then not read through it)
        if entry.get("state") == "done" or (entry.get("state") == "changed"
                                             and "cannot be read beneath the project" in (entry.get("message") or "")):
            name = f"{'f' if iid.startswith('inplace') else 'g'}{iid.split('=')[1].rstrip(']')}"
            assert any((root / "out" / d / name).is_file() and not (root / "out" / d / name).is_symlink()
                       for d in ("sub", ".alt")), iid
        else:
            assert entry.get("state") == "failed", (iid, entry)
