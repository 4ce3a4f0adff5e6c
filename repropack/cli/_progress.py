"""Progress of a run: a live rich display on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from repropack.cli._text import safe, say
from repropack.run.runner import Events, InstanceResult


PER_INSTANCE_LINES = 200  # above this many instances, plain output summarises
SUMMARY_EVERY = 5.0


class PlainEvents(Events):
    """One line per event on stderr (logs, CI, pipes)."""

    def __init__(self, quiet_skips: bool = True, quiet: bool = False):
        self.total = 0
        self.finished_count = 0
        self.quiet_skips = quiet_skips
        self.quiet = quiet  # -q: failures only
        self.t0 = time.monotonic()
        self.last_line = self.t0

    def planned(self, total: int) -> None:
        self.total = total

    def _stamp(self) -> str:
        return f"[{self.finished_count}/{self.total}]"

    def started(self, instance_id: str, attempt: int) -> None:
        pass  # plain output says what finished; `repropack status` shows what runs

    def finished(self, result: InstanceResult) -> None:
        self.finished_count += 1
        if result.status == "failed":
            sys.stderr.write(f"{self._stamp()} failed {safe(result.id)}: {result.failure}: {safe(result.message, one_line=True)}\n")
            return
        if self.quiet or (result.status == "skipped" and self.quiet_skips):
            return
        if self.total > PER_INSTANCE_LINES:
            # a large run: a summary line every few seconds instead of one line per instance
            now = time.monotonic()
            if now - self.last_line >= SUMMARY_EVERY or self.finished_count == self.total:
                self.last_line = now
                sys.stderr.write(f"{self._stamp()} finished, {now - self.t0:.0f} s\n")
            return
        # sys.stderr directly: click.echo asks isatty on every call, a syscall per instance
        sys.stderr.write(f"{self._stamp()} {result.status} {safe(result.id)}\n")

    def retrying(self, instance_id: str, attempt: int, failure: str, message: str, delay: float) -> None:
        say(f"{self._stamp()} retry {instance_id} ({failure}: {safe(message, one_line=True)}); attempt {attempt} in {delay:g}s", err=True)

    def note(self, message: str) -> None:
        say(message, err=True)


class RichEvents(PlainEvents):
    """A progress bar with the running instances; finished ones scroll above it."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("[bold]run"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=True,
        )
        self.task: Any = None
        self.running: dict[str, int] = {}

    def __enter__(self) -> RichEvents:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def planned(self, total: int) -> None:
        super().planned(total)
        self.task = self.progress.add_task("", total=total)

    def _describe(self) -> None:
        names = list(self.running)
        text = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        self.progress.update(self.task, description=_escape(text))

    def started(self, instance_id: str, attempt: int) -> None:
        self.running[instance_id] = attempt
        self._describe()

    def finished(self, result: InstanceResult) -> None:
        self.running.pop(result.id, None)
        self.finished_count += 1
        self.progress.update(self.task, completed=self.finished_count)
        self._describe()
        if result.status == "done":
            self.console.print(f"[green]done[/] {_escape(result.id)}")
        elif result.status == "failed":
            self.console.print(f"[red]failed[/] {_escape(result.id)}: {result.failure}: {_escape(result.message)}")

    def retrying(self, instance_id: str, attempt: int, failure: str, message: str, delay: float) -> None:
        self.running.pop(instance_id, None)
        self.console.print(f"[yellow]retry[/] {_escape(instance_id)} ({failure}: {_escape(message)}); attempt {attempt} in {delay:g}s")

    def note(self, message: str) -> None:
        self.console.print(_escape(message))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(safe(text, one_line=True))


def make_events(as_json: bool, *, quiet: bool = False, verbose: int = 0) -> PlainEvents:
    """A live display on a terminal; plain lines otherwise (-v: skipped instances too; -q: failures only)."""
    if not (as_json or quiet) and sys.stderr.isatty():
        return RichEvents()
    return PlainEvents(quiet_skips=verbose == 0, quiet=quiet)
