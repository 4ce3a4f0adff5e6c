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


class Relay(threading.Thread):
    """Copies FIFO ``src`` (producer side) to FIFO ``dst`` (reader side), hashing as it goes."""

    def __init__(self, src: Path, dst: Path):
        super().__init__(name=f"repropack-pipe-{dst.name}", daemon=True)
        self.src, self.dst = src, dst
        self.hasher = StreamHasher()
        self.error: str | None = None
        self.finished = False  # the producer closed its end and everything was passed on
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        src = os.open(self.src, os.O_RDONLY | os.O_NONBLOCK)  # never blocks; no EOF before a writer came
        dst = -1
        try:
            dst = self._open_reader_side()
            if dst >= 0:
                self._copy(src, dst)
        except OSError as exc:
            self.error = f"{self.dst}: {exc.strerror or exc}"
        finally:
            os.close(src)  # a producer still writing now gets SIGPIPE
            if dst >= 0:
                os.close(dst)  # the reader sees end of file

    def _open_reader_side(self) -> int:
        while not self._halt.is_set():
            try:
                return os.open(self.dst, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: the reader has not opened it yet
                    raise
            time.sleep(0.005)
        return -1

    def _copy(self, src: int, dst: int) -> None:
        poll_in = select.poll()
        poll_in.register(src, select.POLLIN)
        poll_out = select.poll()
        poll_out.register(dst, select.POLLOUT)
        while not self._halt.is_set():
            if not poll_in.poll(100):
                continue
            try:
                data = os.read(src, CHUNK)
            except BlockingIOError:
                continue
            if not data:
                self.finished = True
                return
            self.hasher.update(data)
            view = memoryview(data)
            while view:
                if self._halt.is_set():
                    return
                if not poll_out.poll(100):
                    continue
                try:
                    view = view[os.write(dst, view):]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    self.error = f"the reader of {self.dst.name} closed it before the end of the stream"
                    return

    def result(self) -> dict[str, Any]:
        return {"sha256": self.hasher.hexdigest(), "bytes": self.hasher.size, "complete": self.finished}
