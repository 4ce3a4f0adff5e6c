"""Prometheus metrics of a run, read from its journal at each scrape (``run --metrics``, ``--pushgateway``).

The families (names fixed: dashboards rely on them; docs/observability.md lists them):

- ``repropack_instances{step,state}``: instances per state (running, queued, done, failed, cached)
- ``repropack_instance_duration_seconds{step}``: histogram of successful attempts' wall time
- ``repropack_instance_peak_memory_bytes{step}``: histogram of attempts' peak memory (where measured)
- ``repropack_attempts_total{step,failure}``: attempts ended, by failure class ("none": succeeded)
- ``repropack_run_info{run,profile,backend}``: 1, for joining the others to a run

A scrape folds the journal lines appended since the last one (:class:`~repropack.observe.live.JournalFollower`),
so the figures are the records', whatever backend ran the steps, and serving costs nothing between scrapes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from repropack.observe.live import STATES, JournalFollower, LiveRun

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 86400)
MEMORY_BUCKETS = tuple(float(2 ** n) for n in range(20, 41, 2))  # 1 MiB .. 1 TiB, x4


class RunCollector:
    """A prometheus_client collector over one run's journal."""

    def __init__(self, root: Path, run_id: str, *, profile: str, backend: str,
                 planned: Mapping[str, str] | None = None):
        self.follower = JournalFollower(root, run_id, planned)
        self.run_id, self.profile, self.backend = run_id, profile, backend
        self.steps = sorted(set((planned or {}).values()))
        self._lock = threading.Lock()  # scrapes come on the server's threads

    def describe(self) -> list[Any]:
        return []  # no fixed description: the families are made at each collect

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self._lock:
            live = self.follower.poll()
            families = _families(live, self.steps)
        info = GaugeMetricFamily("repropack_run_info", "The run these figures are of (always 1).",
                                 labels=["run", "profile", "backend"])
        info.add_metric([self.run_id, self.profile, (live.backend if live else None) or self.backend], 1)
        yield info
        gauge = GaugeMetricFamily("repropack_instances", "Step instances of the run per state.",
                                  labels=["step", "state"])
        for step, counts in families["counts"].items():
            for state in STATES:
                gauge.add_metric([step, state], counts.get(state, 0))
        yield gauge
        yield _histogram("repropack_instance_duration_seconds", "Wall time of the run's successful attempts.",
                         families["durations"], DURATION_BUCKETS)
        yield _histogram("repropack_instance_peak_memory_bytes", "Peak memory of the run's attempts.",
                         families["memory"], MEMORY_BUCKETS)
        counter = CounterMetricFamily("repropack_attempts", "Attempts that ended, by failure class (none: succeeded).",
                                      labels=["step", "failure"])
        for (step, failure), n in sorted(families["attempts"].items()):
            counter.add_metric([step, failure], n)
        yield counter


def _families(live: LiveRun | None, steps: list[str]) -> dict[str, Any]:
    counts: dict[str, Any] = {step: {} for step in steps}
    durations: dict[str, list[float]] = {step: [] for step in steps}
    memory: dict[str, list[float]] = {step: [] for step in steps}
    attempts: dict[tuple[str, str], int] = {}
    if live is not None:
        counts.update(live.counts())
        for a in live.attempts:
            if a.ok and a.wall is not None:
                durations.setdefault(a.step, []).append(a.wall)
            if a.peak_rss is not None:
                memory.setdefault(a.step, []).append(float(a.peak_rss))
            key = (a.step, a.failure or "none")
            attempts[key] = attempts.get(key, 0) + 1
    return {"counts": counts, "durations": durations, "memory": memory, "attempts": attempts}


def _histogram(name: str, documentation: str, values: Mapping[str, list[float]], bounds: tuple[float, ...]) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, documentation, labels=["step"])
    for step, observed in sorted(values.items()):
        buckets = [(_bound(b), sum(1 for v in observed if v <= b)) for b in bounds]
        buckets.append(("+Inf", len(observed)))
        family.add_metric([step], buckets, sum_value=sum(observed))
    return family


def _bound(value: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(value)


class MetricsServer:
    """``/metrics`` on HOST:PORT for as long as the run lasts, and the final push to a Pushgateway."""

    def __init__(self, collector: RunCollector):
        from prometheus_client import CollectorRegistry

        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)  # type: ignore[arg-type]
        self._server: Any = None
        self._thread: Any = None

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Start serving; returns the address bound (port 0 picks a free one)."""
        from prometheus_client import start_http_server

        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def push(self, url: str, *, timeout: float = 10.0) -> None:
        """The final figures to a Pushgateway (job ``repropack``, grouped by run); raises OSError on failure."""
        from prometheus_client import push_to_gateway

        push_to_gateway(url, job="repropack", registry=self.registry, grouping_key={"run": self.collector.run_id},
                        timeout=timeout)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (``[::1]:9464`` for IPv6) -> (host, port); ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (write e.g. 127.0.0.1:9464)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port)
