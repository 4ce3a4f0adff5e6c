"""What watches one ``repropack run`` from beside it: the metrics endpoint and the final push.

Started by the CLI around ``Runner.run()``; it reads the run's journal only (never the runner's
memory), so the runner needs no hook. A problem that would keep it from working is raised before
the run starts (the port is taken); one at the end (the Pushgateway does not answer) is a warning:
the run's own outcome stands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repropack.errors import UsageError


@dataclass
class ObserveOptions:
    metrics: str | None = None  # HOST:PORT to serve /metrics on
    pushgateway: str | None = None  # URL of a Prometheus Pushgateway
    alerts: Any = None  # the run's Alerts (the profile's or the manifest's), or None
    project: str = ""
    redact: Callable[[str], str] = str
    causes: Any = None  # the cause table (with the manifest's patterns)


def observation_for(run_id: str, manifest: Any, dag: Any, profile: str | None, *, metrics: str | None,
                    pushgateway: str | None, redact: Callable[[str], str],
                    warn: Callable[[str], None]) -> Observation | None:
    """What watches this run: metrics if asked for, alerts if the run's profile or the manifest has
    ``[alerts]`` (the profile's replace the manifest's); None when there is nothing to do."""
    try:
        chosen = manifest.profile(profile)
    except KeyError:
        chosen = None
    alerts = (chosen.alerts if chosen is not None else None) or manifest.alerts
    if not (metrics or pushgateway or alerts):
        return None
    from repropack.observe.causes import table_for

    planned = {iid: inst.step.name for iid, inst in dag.instances.items()}
    options = ObserveOptions(metrics=metrics, pushgateway=pushgateway, alerts=alerts, project=manifest.project.name,
                             redact=redact, causes=table_for(manifest))
    return Observation(manifest.root, run_id, options, profile=profile or "local",
                       backend=chosen.backend if chosen is not None else "local", planned=planned, warn=warn)


class Observation:
    """A context manager around a run: serves metrics while it lasts, pushes its final figures after."""

    def __init__(self, root: Path, run_id: str, options: ObserveOptions, *, profile: str, backend: str,
                 planned: Mapping[str, str], warn: Callable[[str], None]):
        self.root, self.run_id, self.options = Path(root), run_id, options
        self.profile, self.backend, self.planned, self.warn = profile, backend, planned, warn
        self.server: Any = None
        self.address: tuple[str, int] | None = None
        self.watch: AlertWatch | None = None

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
        if self.options.alerts is not None:
            o = self.options
            self.watch = AlertWatch(self.root, self.run_id, o.alerts, project=o.project, redact=o.redact,
                                    causes=o.causes, planned=self.planned, warn=self.warn)
            self.watch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watch is not None:
            self.watch.close()
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


class AlertWatch:
    """Follows the run's journal on a thread of its own and hands the alerts it calls for to delivery."""

    INTERVAL = 0.5  # seconds between looks at the journal

    def __init__(self, root: Path, run_id: str, config: Any, *, project: str, redact: Callable[[str], str],
                 causes: Any, planned: Mapping[str, str], warn: Callable[[str], None]):
        from repropack.observe.alerts import AlertRules, Delivery
        from repropack.observe.live import JournalFollower

        self.follower = JournalFollower(root, run_id, planned)
        self.rules = AlertRules(config, root, redact, causes)
        self.delivery = Delivery(config, project=project, warn=warn)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="alerts watch")

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._look()

    def _look(self) -> None:
        try:
            self.delivery.send(self.rules.check(self.follower.poll()))
        except OSError:
            pass  # the journal could not be read this time: the next look tries again

    def close(self) -> None:
        """One last look (the run's end and its last failures), then a bounded wait for delivery."""
        self._stop.set()
        self._thread.join()
        self._look()
        self.delivery.close()
