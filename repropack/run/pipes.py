"""``pipe = true`` outputs: producer and reader run together, the stream hashed as it passes.

The producer writes to a FIFO in its attempt directory (its ``{outputs}`` path);
the reader reads the declared path, where the runner puts a second FIFO; a relay
thread copies one to the other and hashes every byte, so provenance records the
stream's sha256 and size although it never touches the disk. Instances joined
by pipes form a *unit*: decided, scheduled, retried and failed as one.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
from pathlib import Path
from typing import Any

from repropack.run.checksums import StreamHasher

CHUNK = 1 << 20


def pipe_units(dag: Any) -> dict[str, tuple[str, ...]]:
    """Instance id -> all members of its unit (topological order), for instances joined by pipes."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for iid, inst in dag.instances.items():
        for path in inst.inputs:
            producer = dag.producers.get(path)
            if producer is not None and path in dag.instances[producer].pipes:
                parent[find(iid)] = find(producer)
    if not parent:
        return {}
    groups: dict[str, list[str]] = {}
    for iid in dag.instances:  # topological order
        groups.setdefault(find(iid), []).append(iid)
    units = {}
    for members in groups.values():
        if len(members) > 1:
            for iid in members:
                units[iid] = tuple(members)
    return units


def pipe_readers(dag: Any, members: tuple[str, ...]) -> dict[str, str]:
    """Pipe path -> the member reading it, within one unit."""
    readers = {}
    for iid in members:
        for path in dag.instances[iid].inputs:
            producer = dag.producers.get(path)
            if producer in members and path in dag.instances[producer].pipes:
                readers[path] = iid
    return readers


def make_fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.unlink()  # a stale file or FIFO from an interrupted run
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)


def make_project_fifo(tree: Any, rel: str) -> None:
    """The stream's FIFO at project path `rel`, made from the project root (`safepath.ProjectTree`).

    An earlier step may have planted a link on the way: one leading outside raises UnsafePath
    instead of a host file being removed and a FIFO made there; a stale entry at `rel` itself is
    removed, never its target."""
    fd, name = tree.parent(rel, create=True)
    try:
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        os.mkfifo(name, 0o600, dir_fd=fd)
    finally:
        os.close(fd)


def _no_reader(poll_out: Any) -> bool:
    """The write end polls POLLERR once every reader closed: nobody will read the rest."""
    return any(events & select.POLLERR for _, events in poll_out.poll(0))


class Relay(threading.Thread):
    """Copies FIFO ``src`` (producer side) to FIFO ``dst`` (reader side), hashing as it goes.

    No open or read here blocks: every wait is a bounded poll, so the relay notices when a
    member ended (:meth:`member_exited`) without opening its end and then ends the stream
    with an error naming that member (``blame``) instead of waiting for it forever.
    """

    def __init__(self, src: Path, dst: Path, *, path: str = "", producer: str = "", reader: str = ""):
        super().__init__(name=f"repropack-pipe-{dst.name}", daemon=True)
        self.src, self.dst = src, dst
        self.path, self.producer, self.reader = path or dst.name, producer, reader
        self.hasher = StreamHasher()
        self.error: str | None = None
        self.blame: str | None = None  # the member the error is about
        self.finished = False  # the producer closed its end and everything was passed on
        self.writer_came = False  # the producer opened its end
        self.reader_came = False  # the reader opened its end
        self._halt = threading.Event()
        self._producer_gone = threading.Event()
        self._reader_gone = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def member_exited(self, member: str) -> None:
        """`member` ended: a side nobody opened by now will never be opened."""
        if member == self.producer:
            self._producer_gone.set()
        if member == self.reader:
            self._reader_gone.set()

    def _fail(self, blame: str, message: str) -> None:
        if self.error is None:
            self.error, self.blame = message, blame

    def run(self) -> None:
        src = os.open(self.src, os.O_RDONLY | os.O_NONBLOCK)  # never blocks; no EOF before a writer came
        dst = -1
        try:
            dst = self._open_reader_side()
            if dst >= 0:
                self._copy(src, dst)
        except OSError as exc:
            self._fail(self.reader, f"{self.path}: {exc.strerror or exc}")
        finally:
            os.close(src)  # a producer still writing now gets SIGPIPE
            if dst >= 0:
                os.close(dst)  # the reader sees end of file

    def _open_reader_side(self) -> int:
        while not self._halt.is_set():
            try:
                fd = os.open(self.dst, os.O_WRONLY | os.O_NONBLOCK)
                self.reader_came = True
                return fd
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: the reader has not opened it yet
                    raise
            if self._reader_gone.is_set():
                self._fail(self.reader, f"{self.reader} exited without opening its input {self.path}")
                return -1
            time.sleep(0.005)
        return -1

    def _copy(self, src: int, dst: int) -> None:
        poll_in = select.poll()
        poll_in.register(src, select.POLLIN)
        poll_out = select.poll()
        poll_out.register(dst, select.POLLOUT)
        while not self._halt.is_set():
            if not poll_in.poll(100):
                # nothing yet: a writer that came and went would show (POLLHUP), so this one never came
                if self._producer_gone.is_set() and not self.writer_came:
                    self._fail(self.producer, f"{self.producer} exited without opening its output {self.path}")
                    return
                if self._reader_gone.is_set() and _no_reader(poll_out):
                    self._fail(self.reader, self._closed_early())
                    return
                continue
            self.writer_came = True
            try:
                data = os.read(src, CHUNK)
            except BlockingIOError:
                continue
            if not data:
                self.finished = True
                return
            self.hasher.update(data)
            if not self._pass_on(poll_out, dst, memoryview(data)):
                return

    def _pass_on(self, poll_out: Any, dst: int, view: memoryview) -> bool:
        while view:
            if self._halt.is_set():
                return False
            if not poll_out.poll(100):
                continue
            try:
                view = view[os.write(dst, view):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                self._fail(self.reader, self._closed_early())
                return False
        return True

    def _closed_early(self) -> str:
        return f"{self.reader} closed its input {self.path} before the end of the stream"


    def verdict(self) -> tuple[str | None, str | None]:
        """(member to blame, message) once both members ended; (None, None) when the stream is whole."""
        if self.error is not None:
            return self.blame, self.error
        if not self.reader_came:
            return self.reader, f"{self.reader} exited without opening its input {self.path}"
        if not self.writer_came:
            return self.producer, f"{self.producer} exited without opening its output {self.path}"
        return None, None

    def result(self) -> dict[str, Any]:
        return {"sha256": self.hasher.hexdigest(), "bytes": self.hasher.size, "complete": self.finished}
