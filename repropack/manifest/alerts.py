"""Validation of ``[alerts]`` (top level) and ``[profiles.NAME.alerts]`` into :class:`~repropack.manifest.model.Alerts`.

What they do is repropack/observe/alerts.py's business; this checks every key like the other
sections do (one problem per line, file:line:column, the nearest key suggested).
"""

from __future__ import annotations

import re
from typing import Any

from repropack.manifest.model import Alerts
from repropack.manifest.positions import KeyPath
from repropack.manifest.validate import Checker

ALERT_KEYS = ("webhooks", "webhooks-env", "email", "smtp", "from", "on", "slow-factor", "min-samples",
              "memory-fraction", "failure-rate", "timeout")
ALERT_EVENTS = ("end", "failure", "anomaly")
_WEBHOOK_RE = re.compile(r"^https?://[^\s/]+\S*$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def alerts(check: Checker, value: Any, key: KeyPath) -> Alerts | None:
    table = check.table(value, key)
    check.keys(table, ALERT_KEYS, key)
    webhooks = _matching(check, table, "webhooks", key, _WEBHOOK_RE, "is not an http(s) URL")
    webhooks_env = _matching(check, table, "webhooks-env", key, _ENV_RE, "is not an environment variable name")
    email = _matching(check, table, "email", key, _EMAIL_RE, "is not an e-mail address")
    smtp = check.string(table, "smtp", key)
    if smtp is not None and not _HOST_RE.match(smtp):
        check.error(key + ("smtp",), f"{smtp!r} is not HOST or HOST:PORT (write e.g. \"smtp.example.org:25\")")
    if email and smtp is None:
        check.error(key + ("email",), "e-mail alerts need an SMTP host", hint='add  smtp = "HOST:PORT"  to the table')
    sender = check.string(table, "from", key)
    if sender is not None and not _EMAIL_RE.match(sender):
        check.error(key + ("from",), f"{sender!r} is not an e-mail address")
    events = check.strings(table, "on", key) if "on" in table else ALERT_EVENTS
    for i, event in enumerate(events):
        if event not in ALERT_EVENTS:
            check.error(key + ("on", i), f"{event!r} is not an alert event (one of {', '.join(ALERT_EVENTS)})")
    if not (webhooks or webhooks_env or email):
        check.error(key, "names nowhere to send alerts", hint="add  webhooks = [\"https://...\"]  or  email = [...]")
    return Alerts(
        webhooks=webhooks, webhooks_env=webhooks_env, email=email, smtp=smtp, sender=sender,
        on=tuple(e for e in events if e in ALERT_EVENTS),
        slow_factor=_number(check, table, "slow-factor", key, 3.0, low=1.0),
        min_samples=check.integer(table, "min-samples", key, minimum=1) or 3,
        memory_fraction=_number(check, table, "memory-fraction", key, 0.9, low=0.0, high=1.0),
        failure_rate=_number(check, table, "failure-rate", key, 0.5, low=0.0, high=1.0),
        timeout=_number(check, table, "timeout", key, 5.0, low=0.1, high=60.0),
    )


def _matching(check: Checker, table: dict[str, Any], name: str, key: KeyPath, pattern: re.Pattern[str],
              problem: str) -> tuple[str, ...]:
    values = check.strings(table, name, key)
    for i, value in enumerate(values):
        if not pattern.match(value):
            shown = value if name != "webhooks" or len(value) <= 24 else value[:24] + "…"  # a hook's path is secret
            check.error(key + (name, i), f"{shown!r} {problem}")
    return tuple(v for v in values if pattern.match(v))


def _number(check: Checker, table: dict[str, Any], name: str, key: KeyPath, default: float, *,
            low: float, high: float | None = None) -> float:
    if name not in table:
        return default
    value = table[name]
    if not check.expect(value, (int, float), key + (name,)):
        return default
    if value < low or (high is not None and value > high):
        bounds = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        check.error(key + (name,), f"must be {bounds}, found {value}")
        return default
    return float(value)
