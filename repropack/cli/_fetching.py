"""Download progress for every command that fetches (fetch, run, env, build), on stderr.

On a terminal: one rich bar counting bytes against the lock's sizes of what is missing, with
speed and time left. Otherwise plain lines: each artifact with -v, a summary unless -q.
"""

from __future__ import annotations

import sys
import threading
import time

import click

from repropack.human import fmt_bytes, fmt_seconds


class PlainFetch:
    """The Reporter of repropack.lock.fetcher as lines (logs, CI, pipes)."""

    def __init__(self, verbose: int = 0, quiet: bool = False, summary: bool = True):
        self.verbose, self.quiet, self.summary = verbose, quiet, summary
        self.lock = threading.Lock()  # downloads report from several threads
        self.received = 0
        self.downloaded = 0
        self.t0 = time.monotonic()

    def on_start(self, artifacts) -> None:
        pass

    def on_bytes(self, count: int) -> None:
        with self.lock:
            self.received += count

    def on_done(self, artifact, cached: bool) -> None:
        if cached:
            return
        with self.lock:
            self.downloaded += 1
        if self.verbose > 0 and not self.quiet:
            size = f" ({fmt_bytes(artifact.size)})" if artifact.size else ""
            click.echo(f"fetched {artifact.label}{size}", err=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def close(self) -> None:
        if self.downloaded and self.summary and not self.quiet:
            click.echo(f"fetched {self.downloaded} artifact(s), {fmt_bytes(self.received)} in "
                       f"{fmt_seconds(time.monotonic() - self.t0)}", err=True)


class RichFetch(PlainFetch):
    """Bytes received against the total the lock records for the missing artifacts, speed, ETA."""

    def __init__(self, verbose: int = 0, quiet: bool = False, summary: bool = True):
        super().__init__(verbose, quiet, summary)
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(TextColumn("fetching"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[done]}/{task.fields[files]} files"),
                                 console=self.console, transient=True)
        self.task = None
        self.files = self.done = 0
        self.total: int | None = 0

    def on_start(self, artifacts) -> None:
        # every environment fetched by one command joins the same bar; an unknown size makes the total unknown
        sizes = [a.size for a in artifacts]
        self.total = None if self.total is None or not all(sizes) else self.total + sum(sizes)
        self.files += len(artifacts)
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("fetch", total=self.total, files=self.files, done=self.done)
        self.progress.update(self.task, total=self.total, files=self.files)

    def on_bytes(self, count: int) -> None:
        super().on_bytes(count)
        self.progress.advance(self.task, count)

    def on_done(self, artifact, cached: bool) -> None:
        super().on_done(artifact, cached)
        with self.lock:
            self.done += 1
            if cached and artifact.size and self.total is not None:
                self.total -= artifact.size  # already here: nothing to download for it
        self.progress.update(self.task, total=self.total, done=self.done)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
        super().close()


class StatusFetch(PlainFetch):
    """Download progress as a status message (the build's status line already holds the terminal)."""

    def __init__(self, say, quiet: bool = False):
        super().__init__(0, quiet)
        self.say = say
        self.expected: int | None = 0
        self.last = 0.0

    def on_start(self, artifacts) -> None:
        sizes = [a.size for a in artifacts]
        self.expected = None if self.expected is None or not all(sizes) else self.expected + sum(sizes)

    def on_bytes(self, count: int) -> None:
        super().on_bytes(count)
        now = time.monotonic()
        if now - self.last >= 0.2:  # a status update per chunk would cost more than the download
            self.last = now
            of = f" of {fmt_bytes(self.expected)}" if self.expected else ""
            self.say(f"fetching {fmt_bytes(self.received)}{of}")

    def on_done(self, artifact, cached: bool) -> None:
        super().on_done(artifact, cached)
        if cached and artifact.size and self.expected is not None:
            self.expected -= artifact.size  # already here: nothing to download for it


def fetch_reporter(*, as_json: bool = False, quiet: bool = False, verbose: int = 0, summary: bool = True) -> PlainFetch:
    """Rich on a terminal, plain lines otherwise; summary=False when the caller prints its own."""
    if not (as_json or quiet) and sys.stderr.isatty():
        return RichFetch(verbose, quiet, summary)
    return PlainFetch(verbose, quiet or as_json, summary)
