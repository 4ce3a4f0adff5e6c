"""One run per project at a time: an exclusive ``flock`` on ``.repropack/run.lock``.

The kernel drops the lock when the runner dies, even by SIGKILL, so a stale
lock cannot block the next run; the file names the holder for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from repropack.errors import RunLocked, StorageError
from repropack.run.statefiles import open_state

LOCK_FILE = Path(".repropack") / "run.lock"


class ProjectLock:
    def __init__(self, root: Path, run_id: str):
        self.path = Path(root) / LOCK_FILE
        self.run_id = run_id
        self._fd = -1

    def acquire(self) -> None:
        try:
            fd = open_state(self.path, os.O_RDWR | os.O_CREAT)  # a link there would be truncated through
        except OSError as exc:  # a read-only project, or no permission: one line naming the lock file
            raise StorageError.from_os(exc, self.path.parent.parent) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise RunLocked(
                f"another `repropack run` is active in {self.path.parent.parent}{holder}",
                hint="wait for it to end, or stop it (Ctrl-C) first",
            ) from None
        info = {"pid": os.getpid(), "run": self.run_id, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:  # a full disk: the lock holds without its description, and `clean` can still free space
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw)
        return f" (run {info['run']}, pid {info['pid']}, since {info['since']})"
    except (ValueError, KeyError, TypeError):
        return ""


def is_locked(root: Path) -> bool:
    path = Path(root) / LOCK_FILE
    try:
        fd = open_state(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
