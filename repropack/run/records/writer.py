"""Writes a run's format-2 records (see :mod:`repropack.run.records`) for one writer.

Records are buffered and handed to the kernel by :meth:`RecordsWriter.flush`, one ``write`` per
file, in this order: stream frames, instance lines, results lines. The runner flushes them before
the journal, so a ``done`` in the journal always has its results line (and that line its stream
bytes) on disk: a ``kill -9`` at any moment loses no finished instance, and what it tears (the
last line) is skipped by every reader. A successful attempt leaves no file of its own: its
non-empty streams are appended to one log and its figures to one results file. A failed one keeps
its folder under ``failed/``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repropack.run.journal import repair_tail
from repropack.run.records import format as rf
from repropack.run.safepath import DIR_FLAGS, UnsafePath, open_regular

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class RecordsWriter:
    """One run's records, as written by ``writer`` (``local`` for the local runner)."""

    def __init__(self, run_dir: Path | str, writer: str = rf.LOCAL_WRITER):
        self.run_dir = os.fspath(run_dir)
        self.writer = writer
        self.results_name = rf.results_file(writer)
        self.streams_name = rf.streams_file(writer)
        self._dir_fd = os.open(self.run_dir, DIR_FLAGS)  # the run folder: every file is opened beneath it
        self._fds: dict[str, int] = {}
        self._pending: dict[str, list[bytes]] = {rf.INSTANCES: [], self.results_name: [], self.streams_name: []}
        self._stream_end: int | None = None  # the streams log's size once all pending frames are written

    # -- files ---------------------------------------------------------------------------
    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = self._open(name, _APPEND)
        return fd

    def _open(self, name: str, flags: int) -> int:
        """A file below the run folder, its folder made when missing; a planted link is refused."""
        head, _, base = name.rpartition("/")
        parent = self._dir_fd
        if head:
            try:
                os.mkdir(head, 0o755, dir_fd=self._dir_fd)
            except FileExistsError:
                pass
            parent = os.open(head, DIR_FLAGS, dir_fd=self._dir_fd)
        try:
            return open_regular(base, flags, dir_fd=parent, shown=f"{self.run_dir}/{name}")
        except UnsafePath as exc:
            raise OSError(str(exc)) from None
        finally:
            if parent != self._dir_fd:
                os.close(parent)

    def write_whole(self, name: str, data: bytes) -> None:
        """A file written whole (run.json, SHA256SUMS): a temporary name, then a rename."""
        tmp = f"{name}.tmp"
        fd = self._open(tmp, _CREATE)
        try:
            _write_all(fd, data, f"{self.run_dir}/{tmp}")
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=self._dir_fd)
            raise
        os.close(fd)
        os.rename(tmp, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)

    # -- records -------------------------------------------------------------------------
    def run(self, record: Mapping[str, Any]) -> None:
        """``run.json`` (at the start of the run, and again at its end)."""
        import json

        self.write_whole(rf.RUN_JSON, json.dumps(record, indent=1, sort_keys=True, default=str).encode() + b"\n")

    def instance(self, record: Mapping[str, Any]) -> None:
        self._pending[rf.INSTANCES].append(rf.dumps_line(record))

    def result(self, record: Mapping[str, Any]) -> None:
        self._pending[self.results_name].append(rf.dumps_line(record))

    def streams(self, instance: str, attempt: int, files: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """Append the non-empty ones of ``files`` (stream name -> path of what the step wrote) to the
        streams log; returns the results record's ``streams``. The files are left as they are."""
        found: dict[str, dict[str, Any]] = {}
        for name, path in files.items():
            data = _read_regular(path)
            if not data:
                continue
            if self._stream_end is None:
                self._stream_end = os.fstat(self._fd(self.streams_name)).st_size
            framed, offset = rf.frame(instance, attempt, name, data)
            self._pending[self.streams_name].append(framed)
            found[name] = rf.stream_ref(self.streams_name, self._stream_end + offset, len(data))
            self._stream_end += len(framed)
        return found

    def keep_failed(self, instance_dirname: str, attempt: int, files: Mapping[str, str],
                    metrics: bytes) -> tuple[str, dict[str, dict[str, Any]]]:
        """Move a failed attempt's files (name -> path: script.sh, stdout, stderr) into
        ``failed/<inst-dir>/attempt-<n>/`` and write its metrics.json there; returns that folder
        (relative to the run folder) and the results record's ``streams`` (only non-empty ones)."""
        rel = rf.failed_dir(instance_dirname, attempt)
        parent = os.path.dirname(rel)
        for folder in (rf.FAILED, parent, rel):
            try:
                os.mkdir(folder, 0o755, dir_fd=self._dir_fd)
            except FileExistsError:
                pass
        streams: dict[str, dict[str, Any]] = {}
        for name, path in files.items():
            target = f"{self.run_dir}/{rel}/{name}"
            try:
                os.replace(path, target)  # a link is moved as a link, never followed
                st = os.lstat(target)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):  # a container put a link or a FIFO there: not the step's log
                os.unlink(target)
                continue
            if name in rf.STREAM_NAMES and st.st_size:
                streams[name] = rf.stream_ref(f"{rel}/{name}", 0, st.st_size)
        fd = self._open(f"{rel}/{rf.METRICS}", _CREATE)
        try:
            _write_all(fd, metrics, f"{self.run_dir}/{rel}/{rf.METRICS}")
        finally:
            os.close(fd)
        return rel, streams

    def flush(self) -> None:
        """Hand buffered records to the kernel: streams first, then instances, then results.

        A write that fails (a full disk) drops what is still buffered (the journal records none
        of it as done: those attempts rerun) and cuts the torn line, so the files stay whole."""
        for name in (self.streams_name, rf.INSTANCES, self.results_name):
            pending = self._pending[name]
            if pending:
                data = b"".join(pending)
                pending.clear()
                try:
                    _write_all(self._fd(name), data, f"{self.run_dir}/{name}")
                except OSError:
                    for rest in self._pending.values():
                        rest.clear()
                    self._stream_end = None
                    if name != self.streams_name and name in self._fds:
                        repair_tail(self._fds[name])
                    raise

    def sync(self) -> None:
        self.flush()
        for fd in self._fds.values():
            os.fsync(fd)

    def close(self) -> None:
        try:
            self.sync()
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._dir_fd >= 0:
                os.close(self._dir_fd)
                self._dir_fd = -1


def _read_regular(path: str) -> bytes:
    """A step's log, read only if it is a regular file (a container may have swapped it for a link
    to a host file, or a FIFO): never followed, never blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # missing, or a link (ELOOP)
        return b""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return b""
        chunks = []
        while True:
            chunk = os.read(fd, max(st.st_size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, shown: str) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, shown) from None
