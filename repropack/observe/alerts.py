"""Alerts of a run: decided from its journal (:class:`AlertRules`), delivered beside it (:class:`Delivery`).

Kinds (``on`` in ``[alerts]`` picks among end, failure, anomaly):

- ``failure``  an instance failed after all its attempts (its cause from the logs);
- ``anomaly``  an instance running longer than ``slow-factor`` times its step's median (once the step
  has ``min-samples`` successful attempts in this run); an attempt whose peak memory passed
  ``memory-fraction`` of its request; failed attempts over ended ones above ``failure-rate`` (after
  ``min-samples`` ended attempts);
- ``end``      the run ended, with its counts.

Each alert has a key and is sent once per run. Its text is built from the records (run, step,
instance, failure class, cause) and passes the project's redactor: no secret leaves in it.
Every destination (webhook, the e-mail) has a thread of its own, and each delivery a time-out,
so a receiver that never answers holds back only its own queue, never the run; the first failure
of each destination is logged, later ones are not.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repropack.observe.live import LiveRun

MAX_FAILURE_ALERTS = 20  # one per failed instance up to this; the end alert counts the rest


@dataclass(frozen=True)
class Alert:
    kind: str  # end | failure | anomaly
    key: str  # unique within the run: sent once
    text: str  # one line for people (Slack/Mattermost `text`, the e-mail's subject and body)
    fields: dict[str, Any] = field(default_factory=dict)  # run, step, instance, cause, ... for machines

    def payload(self, project: str) -> dict[str, Any]:
        """Slack- and Mattermost-compatible incoming-webhook JSON (both read `text`; both ignore the rest)."""
        return {"text": self.text, "username": "repropack",
                "repropack": {"kind": self.kind, "project": project, **self.fields}}


class AlertRules:
    """Which alerts the run's state calls for now, each once."""

    def __init__(self, config: Any, root: Path, redact: Callable[[str], str], causes: Any = None):
        self.config, self.root, self.redact, self.causes = config, Path(root), redact, causes
        self.sent: set[str] = set()
        self.failures = 0

    def check(self, live: LiveRun | None, now: float | None = None) -> list[Alert]:
        if live is None:
            return []
        now = time.time() if now is None else now
        out: list[Alert] = []
        on = set(self.config.on)
        if "failure" in on:
            out += self._failures(live)
        if "anomaly" in on:
            out += self._slow(live, now) + self._memory(live) + self._rate(live)
        if "end" in on and live.ended:
            out.append(self._end(live))
        fresh = [a for a in out if a.key not in self.sent]
        self.sent.update(a.key for a in fresh)
        return fresh

    def _alert(self, kind: str, key: str, text: str, **fields: Any) -> Alert:
        return Alert(kind, key, self.redact(text), {k: self.redact(v) if isinstance(v, str) else v
                                                     for k, v in fields.items()})

    def _failures(self, live: LiveRun) -> Iterator[Alert]:
        for inst in live.failed():
            key = f"failure:{inst.id}"
            if key in self.sent or self.failures >= MAX_FAILURE_ALERTS:
                continue
            self.failures += 1
            cause = self._cause(live, inst)
            because = f": {cause.cause} ({cause.evidence}); fix: {cause.fix}" if cause else ""
            yield self._alert(
                "failure", key, f"repropack run {live.run_id}: {inst.id} (step {inst.step}) failed "
                f"({inst.failure}: {inst.message}){because}", run=live.run_id, step=inst.step, instance=inst.id,
                failure=inst.failure, message=inst.message, cause=cause.cause if cause else None,
                fix=cause.fix if cause else None)

    def _cause(self, live: LiveRun, inst: Any) -> Any:
        try:
            from repropack.observe.attempts import diagnose_attempt
            from repropack.run.records.reader import open_run

            return diagnose_attempt(open_run(self.root, live.run_id, only={inst.id}), inst.id, inst.failure,
                                    self.causes)
        except Exception:  # noqa: BLE001 - an alert without a cause beats no alert
            return None

    def _slow(self, live: LiveRun, now: float) -> list[Alert]:
        out = []
        k = self.config.slow_factor
        for inst in live.running():
            walls = live.durations(inst.step)
            if inst.started is None or len(walls) < self.config.min_samples:
                continue
            median = live.median(inst.step) or 0.0
            elapsed = now - inst.started
            if median > 0 and elapsed > k * median:
                out.append(self._alert(
                    "anomaly", f"slow:{inst.id}", f"repropack run {live.run_id}: {inst.id} (step {inst.step}) has "
                    f"run {elapsed:.0f} s, more than {k:g}× its step's median of {median:.1f} s",
                    run=live.run_id, step=inst.step, instance=inst.id, cause="slow", elapsed=round(elapsed, 3),
                    median=round(median, 3)))
        return out

    def _memory(self, live: LiveRun) -> list[Alert]:
        out = []
        for a in live.attempts:
            if a.peak_rss is None or not a.requested_memory:
                continue
            share = a.peak_rss / a.requested_memory
            if share > self.config.memory_fraction:
                out.append(self._alert(
                    "anomaly", f"memory:{a.instance}", f"repropack run {live.run_id}: {a.instance} (step {a.step}) "
                    f"attempt {a.attempt} peaked at {_mib(a.peak_rss)}, {share:.0%} of the {_mib(a.requested_memory)} "
                    "it asked for", run=live.run_id, step=a.step, instance=a.instance, cause="memory",
                    peak_rss=a.peak_rss, requested=a.requested_memory))
        return out

    def _rate(self, live: LiveRun) -> list[Alert]:
        ended = len(live.attempts)
        failed = sum(1 for a in live.attempts if not a.ok)
        if ended < self.config.min_samples or failed / ended <= self.config.failure_rate:
            return []
        return [self._alert(
            "anomaly", "failure-rate", f"repropack run {live.run_id}: {failed} of {ended} attempts failed "
            f"({failed / ended:.0%}, above {self.config.failure_rate:.0%})", run=live.run_id, cause="failure-rate",
            failed=failed, ended=ended)]

    def _end(self, live: LiveRun) -> Alert:
        counts: dict[str, int] = {}
        for inst in live.instances.values():
            counts[inst.state] = counts.get(inst.state, 0) + 1
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n) or "nothing to do"
        return self._alert("end", "end", f"repropack run {live.run_id} ended {live.status}: {shown}",
                           run=live.run_id, status=live.status, counts=counts)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


class Delivery:
    """One thread per destination; :meth:`close` waits a bounded time for what is queued."""

    def __init__(self, config: Any, *, project: str, warn: Callable[[str], None], environ: Any = None):
        import os

        environ = os.environ if environ is None else environ
        self.config, self.project, self.warn = config, project, warn
        urls = list(config.webhooks) + [environ[name] for name in config.webhooks_env if environ.get(name)]
        self._queues: list[tuple[queue.Queue[Alert | None], threading.Thread]] = []
        for url in dict.fromkeys(urls):
            self._start(_shown(url), lambda alert, url=url: self._post(url, alert))
        if config.email and config.smtp:
            self._start(f"e-mail via {config.smtp}", self._mail)

    def _start(self, name: str, send: Callable[[Alert], None]) -> None:
        box: queue.Queue[Alert | None] = queue.Queue()
        thread = threading.Thread(target=self._drain, args=(name, box, send), daemon=True, name=f"alerts {name}")
        thread.start()
        self._queues.append((box, thread))

    def send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            for box, _ in self._queues:
                box.put(alert)

    def close(self) -> None:
        """Let the destinations finish their queues: at most one time-out and a second overall."""
        for box, _ in self._queues:
            box.put(None)
        deadline = time.monotonic() + 1.0 + self.config.timeout
        for _, thread in self._queues:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _drain(self, name: str, box: queue.Queue[Alert | None], send: Callable[[Alert], None]) -> None:
        dead = False
        while (alert := box.get()) is not None:
            if dead:
                continue  # it failed once: later alerts would only wait for it again
            try:
                send(alert)
            except Exception as exc:  # noqa: BLE001 - any failure of a receiver: logged once, never raised
                dead = True
                self.warn(f"alerts: {name} failed ({_why(exc, self.config.timeout)}); the run goes on, "
                          "later alerts to it are dropped")

    def _post(self, url: str, alert: Alert) -> None:
        import urllib.request

        body = json.dumps(alert.payload(self.project)).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                         method="POST")
        with urllib.request.urlopen(request, timeout=self.config.timeout) as response:  # noqa: S310 - http(s) only
            response.read(1 << 16)

    def _mail(self, alert: Alert) -> None:
        import smtplib
        from email.message import EmailMessage

        host, port = _host_port(self.config.smtp, 25)
        message = EmailMessage()
        message["Subject"] = alert.text if len(alert.text) <= 150 else alert.text[:149] + "…"
        message["From"] = self.config.sender or f"repropack@{socket.gethostname()}"
        message["To"] = ", ".join(self.config.email)
        message.set_content(alert.text + "\n\n" + json.dumps(alert.payload(self.project)["repropack"], indent=1,
                                                             default=str) + "\n")
        with smtplib.SMTP(host, port, timeout=self.config.timeout) as smtp:
            smtp.send_message(message)


def _host_port(text: str, default: int) -> tuple[str, int]:
    """HOST, HOST:PORT or [V6]:PORT (as [alerts] smtp was checked to be)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, _, port = text.partition(":")
    return host, int(port) if port else default


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)) or "timed out" in str(exc):
        return f"no answer within {timeout:g} s"
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__


def _shown(url: str) -> str:
    """Scheme and host only: a webhook's path is its secret (Slack's and Mattermost's are)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"webhook {parts.scheme}://{parts.hostname or '?'}{port}/…"
