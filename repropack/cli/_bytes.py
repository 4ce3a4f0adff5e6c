"""A byte-counting progress bar for the archive commands: rich on a terminal, silent otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


class Bytes:
    """Called with each increment; ``total(n)`` once the size is known."""

    def __init__(self, progress=None, task=None):
        self.progress, self.task = progress, task
        self.known: int | None = None

    def __call__(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, n)

    def total(self, n: int) -> None:
        self.known = n
        if self.progress is not None:
            self.progress.update(self.task, total=n)


@contextlib.contextmanager
def byte_progress(label: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Bytes]:
    if quiet or not sys.stderr.isatty():
        yield Bytes()
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    progress = Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True, highlight=False), transient=True)
    with progress:
        yield Bytes(progress, progress.add_task(label, total=total))
