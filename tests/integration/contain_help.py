"""Helpers for the containment tests: run repropack as root or as an unprivileged user, find processes.

As root the local backend contains each step in a cgroup; as a user who cannot write any cgroup it
falls back to a subreaper with process-group and session tracking. The tests run both ways.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest
from runhelp import CLI

USER = "repropack-test"
REPO = Path(__file__).resolve().parents[2]
# The unprivileged user cannot read /root (where this Python may live): it uses the system Python
# of the same minor version with this checkout and the venv's packages on its path.
SYSTEM_PYTHON = "/usr/bin/python3"


def ensure_user() -> str:
    """The unprivileged test user, created when we are root; skip when it is missing and we are not."""
    try:
        pwd.getpwnam(USER)
        return USER
    except KeyError:
        pass
    if os.geteuid() != 0:
        pytest.skip(f"no user {USER!r} and not root to create it (useradd)")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                   check=True, capture_output=True)
    return USER


def user_cli(user: str | None) -> list[str]:
    if user is None:
        return list(CLI)
    if not os.path.exists(SYSTEM_PYTHON) or shutil.which("runuser") is None:
        pytest.skip("needs /usr/bin/python3 and runuser to run as another user")
    site = sysconfig.get_paths()["purelib"]
    code = (f"import site, sys; sys.path.insert(0, {str(REPO)!r}); site.addsitedir({site!r}); "
            "from repropack.cli import main; sys.exit(main())")
    return ["runuser", "-u", user, "--", SYSTEM_PYTHON, "-c", code]


def project_dir(user: str | None, tmp_path: Path) -> Path:
    """tmp_path for root; for the user a folder it owns under /tmp (pytest's tmp_path is root's, mode 700)."""
    if user is None:
        return tmp_path / "p"
    base = Path(tempfile.mkdtemp(prefix="repropack-contain-", dir="/tmp"))
    os.chmod(base, 0o755)
    root = base / "p"
    root.mkdir()
    return root


def give(user: str | None, root: Path) -> None:
    if user is not None:
        subprocess.run(["chown", "-R", f"{user}:", str(root)], check=True)


def run_cli(user: str | None, root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(root)}
    return subprocess.run([*user_cli(user), *args, "-C", str(root)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def start_cli(user: str | None, root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HOME": str(root)}
    return subprocess.Popen([*user_cli(user), *args, "-C", str(root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)


def runner_pid(launcher: subprocess.Popen) -> int:
    """The repropack process itself (under runuser it is runuser's child)."""
    if launcher.args[0] != "runuser":
        return launcher.pid
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise AssertionError("runuser started no repropack process")


def token() -> str:
    """A unique `sleep` argument, so that the test finds only its own processes."""
    return f"{random.randint(100, 999)}.{random.randint(10000, 99999)}"


def pids_running(text: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `text`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z" and "pytest" not in cmdline:
            found.append(int(name))
    return found


def wait_until(predicate, timeout: float = 10.0) -> float | None:
    """Seconds until predicate() holds, or None after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def report_attempt(user: str | None, root: Path, iid: str) -> dict:
    import json

    done = run_cli(user, root, "report", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["instances"][iid]["attempts"][-1]


def say(text: str) -> None:
    print(text, file=sys.stderr)
