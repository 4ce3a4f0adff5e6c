"""Helpers for the runner's integration tests: write small projects, run the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CLI = [sys.executable, "-c", "import sys; from repropack.cli import main; sys.exit(main())"]


def write_project(root: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "repropack.toml").write_text(textwrap.dedent(manifest).lstrip(), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def repropack(root: Path, *args: str, check: bool = False, timeout: float = 300, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args, "-C", str(root)], capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"repropack {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def start(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args, "-C", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(root: Path) -> list[dict]:
    path = root / ".repropack" / "journal.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def done_ids(root: Path) -> set[str]:
    return {r["id"] for r in journal(root) if r["t"] == "done"}


def to_run(root: Path, *extra: str) -> list[str]:
    done = repropack(root, "run", "--dry-run", "--json", *extra, check=True)
    return [entry["id"] for entry in json.loads(done.stdout)["to_run"]]


def processes_with_marker(run_id: str) -> list[int]:
    marker = f"REPROPACK_RUN_ID={run_id}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            pass
    return found


def left_after(probe, within: float = 10.0) -> list:
    """What probe() still finds once it finds nothing or `within` seconds have passed.

    Processes and containers take a moment to vanish on a loaded machine; a test allows 10 s
    (issue 8) instead of asserting after a fixed sleep."""
    deadline = time.monotonic() + within
    while (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def last_run_id(root: Path) -> str:
    return (root / ".repropack" / "runs" / "latest").read_text().strip()


def share_sif(root: Path, base_sif) -> None:
    """Hard-link the session's SIF (the base_sif fixture) into the project's SIF cache."""
    source, relative = base_sif
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    os.link(source, root / relative)


def sentinel(top: Path) -> dict[str, tuple]:
    """Every entry under `top` (itself included): (kind, inode, size, mtime_ns, sha256 or link target)."""
    import hashlib
    import stat

    seen: dict[str, tuple] = {}
    for base, dirs, files in os.walk(top):
        for name in [".", *dirs, *files] if base == str(top) else [*dirs, *files]:
            path = os.path.join(base, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            else:
                extra = ""
            seen[os.path.normpath(os.path.relpath(path, top))] = (
                stat.S_IFMT(st.st_mode), st.st_ino, st.st_size, st.st_mtime_ns, extra)
    return seen


def status_json(root: Path) -> dict:
    return json.loads(repropack(root, "status", "--json", check=True).stdout)
