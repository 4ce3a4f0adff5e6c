"""What watches one ``repropack run`` from beside it: the metrics endpoint and the final push.

Started by the CLI around ``Runner.run()``; it reads the run's journal only (never the runner's
memory), so the runner needs no hook. A problem that would keep it from working is raised before
the run starts (the port is taken); one at the end (the Pushgateway does not answer) is a warning:
the run's own outcome stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.errors import UsageError


@dataclass
class ObserveOptions:
    metrics: str | None = None  # HOST:PORT to serve /metrics on
    pushgateway: str | None = None  # URL of a Prometheus Pushgateway


class Observation:
    """A context manager around a run: serves metrics while it lasts, pushes its final figures after."""

    def __init__(self, root: Path, run_id: str, options: ObserveOptions, *, profile: str, backend: str,
                 planned: Mapping[str, str], warn: Callable[[str], None]):
        self.root, self.run_id, self.options = Path(root), run_id, options
        self.profile, self.backend, self.planned, self.warn = profile, backend, planned, warn
        self.server: Any = None
        self.address: tuple[str, int] | None = None

    def __enter__(self) -> Observation:
        if self.options.metrics or self.options.pushgateway:
            from repropack.observe.metrics import MetricsServer, RunCollector

            collector = RunCollector(self.root, self.run_id, profile=self.profile, backend=self.backend,
                                     planned=self.planned)
            self.server = MetricsServer(collector)
        if self.options.metrics:
            from repropack.observe.metrics import parse_address

            try:
                host, port = parse_address(self.options.metrics)
            except ValueError as exc:
                raise UsageError(f"--metrics: {exc}") from None
            try:
                self.address = self.server.serve(host, port)
            except OSError as exc:
                raise UsageError(f"--metrics {self.options.metrics}: cannot listen there: {exc.strerror or exc}",
                                 hint="pick a free port, or 127.0.0.1:0 for any") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is None:
            return
        try:
            if self.options.pushgateway:
                try:
                    self.server.push(self.options.pushgateway)
                except Exception as err:  # noqa: BLE001 - urllib raises OSError, ValueError, HTTPError...
                    self.warn(f"--pushgateway {_shown(self.options.pushgateway)}: the final figures were not pushed: {err}")
        finally:
            self.server.close()


def _shown(url: str) -> str:
    """Scheme and host only: a webhook's or gateway's path may be its secret (a Slack hook's is)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}/…" if parts.scheme else "…"
