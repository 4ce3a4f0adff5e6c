"""Remove secrets from text the report shows (commands, log tails, argv).

A report is meant to be shared, so anything that looks like a credential is
replaced with ``***`` before it reaches the model: passwords in URLs,
``token=``-style assignments and query parameters, ``Authorization`` headers,
AWS access keys, anaconda ``/t/<token>/`` segments, and the values of the
caller's environment variables whose names say they are secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MASK = "***"
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.I)
_PATTERNS = (
    # scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@host
    (re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]+):(?P<pw>[^/\s@]+)@", re.I), r"\g<pre>\g<user>:***@"),
    (re.compile(r"(?P<pre>\bhttps?://)(?P<tok>[^/\s:@]{16,})@", re.I), r"\g<pre>***@"),
    # anaconda.org style /t/<token>/
    (re.compile(r"/t/[A-Za-z0-9._-]{8,}/"), "/t/***/"),
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"(?i)(authorization\s*[:=]\s*(?:bearer|basic|token)?\s*)[^\s'\"]+"), r"\1***"),
    # NAME_TOKEN=value, --password value, ?token=value, "api_key": "value"
    (re.compile(r"(?i)(\b[\w.-]*(?:token|secret|password|passwd|api[_-]?key|access[_-]?key)[\w.-]*\b[\"']?\s*[=:]\s*[\"']?)"
                r"[^\s&'\";,]+"), r"\1***"),
    (re.compile(r"(?i)(--?(?:token|secret|password|passwd|api-key|access-key)[\s=]+)[^\s'\";]+"), r"\1***"),
    # AWS access key ids and GitHub-style tokens
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), MASK),
)


def secret_values(environ: Mapping[str, str] | None = None, names: Iterable[str] = ()) -> list[str]:
    """Values of environment variables that hold secrets (by name), longest first."""
    environ = os.environ if environ is None else environ
    wanted = {n for n in environ if _SECRET_NAME.search(n)} | {n for n in names if n in environ}
    values = {environ[n] for n in wanted if len(environ[n]) >= 6}
    return sorted(values, key=len, reverse=True)


class Redactor:
    def __init__(self, values: Iterable[str] = ()):
        self.values = [v for v in values if v]

    def __call__(self, text: str | None) -> str:
        if not text:
            return ""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text
