"""The one redactor: secrets are masked in everything repropack prints or records.

Two ways a secret is found. By form: passwords in URLs, ``token=``-style assignments and
query parameters, ``--password VALUE``, ``Authorization`` headers, AWS access key ids,
GitHub tokens, anaconda ``/t/<token>/`` segments. By value: the value of every
environment variable whose name looks secret (a profile passes them through to steps),
and of every param (manifest default or ``--param`` override) whose name looks secret,
is masked wherever it appears, e.g. in a step's stderr tail.

A ``--param`` value is known only to its run. So that ``logs`` and ``report`` can mask it
later without any record holding it, the run keeps salted digests of the secret values that
reach its steps (:meth:`Redactor.digests`; a salted SHA-256 per value, like the params digest
the cache key already holds) and a later reader masks every window of text with a matching
digest. That scan costs a hash per byte and recorded length (about 2 s per MB and length on
a busy 2-core VM): cheap for tails, slow for `logs` of a huge stream.

Used by the run records (journal, ``run.json``), the CLI's failure summary and ``logs``,
the report and error messages. A step still gets the real values: only what repropack
shows or keeps is masked.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MASK = "***"
MIN_VALUE = 6  # shorter values are masked by form only: masking "abc" everywhere would garble the text
# Not "pwd" or "auth": PWD, SSH_AUTH_SOCK and an `author` param are not secrets.
_KEYWORD = r"(?:token|secret|password|passwd|passphrase|credential|api[_-]?key|access[_-]?key|private[_-]?key)"
SECRET_NAME = re.compile(_KEYWORD, re.I)
_PATTERNS = (
    # scheme://user:password@host -> scheme://user:***@host ; scheme://token@host -> scheme://***@host
    (re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]+):(?P<pw>[^/\s@]+)@", re.I), r"\g<pre>\g<user>:***@"),
    (re.compile(r"(?P<pre>\bhttps?://)(?P<tok>[^/\s:@]{16,})@", re.I), r"\g<pre>***@"),
    # anaconda.org style /t/<token>/
    (re.compile(r"/t/[A-Za-z0-9._-]{8,}/"), "/t/***/"),
    # Authorization: Bearer xxx / Basic xxx
    (re.compile(r"(?i)(authorization\s*[:=]\s*(?:bearer|basic|token)?\s*)[^\s'\"]+"), r"\1***"),
    # NAME_TOKEN=value, password=value, ?token=value, "api_key": "value"
    (re.compile(rf"(?i)(\b[\w.-]*{_KEYWORD}[\w.-]*\b[\"']?\s*[=:]\s*[\"']?)[^\s&'\";,]+"), r"\1***"),
    (re.compile(rf"(?i)(--?{_KEYWORD}[\s=]+)[^\s'\";]+"), r"\1***"),
    # AWS access key ids and GitHub-style tokens
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), MASK),
)
_FLAG = re.compile(rf"(?i)^--?[\w.-]*{_KEYWORD}[\w.-]*$")


def secret_values(environ: Mapping[str, str] | None = None, names: Iterable[str] = ()) -> list[str]:
    """Values of environment variables that hold secrets (by their name, or named in ``names``)."""
    environ = os.environ if environ is None else environ
    wanted = {n for n in environ if SECRET_NAME.search(n)} | {n for n in names if n in environ}
    return _longest_first(environ[n] for n in wanted)


def secret_params(params: Mapping[str, Any]) -> list[str]:
    """Every text value under a param whose name (at any depth) looks secret; no recursion."""
    found: list[str] = []
    stack: list[tuple[Any, bool]] = [(params, False)]
    while stack:
        value, secret = stack.pop()
        if isinstance(value, Mapping):
            stack.extend((v, secret or bool(SECRET_NAME.search(str(k)))) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, secret) for v in value)
        elif secret and value is not None and not isinstance(value, bool):
            found.append(str(value))
    return _longest_first(found)


def _longest_first(values: Iterable[str]) -> list[str]:
    # Longest first, so a secret containing another is masked whole.
    return sorted({v for v in values if len(v) >= MIN_VALUE}, key=len, reverse=True)


class Redactor:
    """Masks the given secret values, values matching recorded digests, then every secret form."""

    def __init__(self, values: Iterable[str] = (), digests: Mapping[str, Any] | None = None,
                 reach_steps: Iterable[str] | None = None):
        self.values = _longest_first(v for v in values if v)
        # Only what a step can print needs a digest (a step sees no other variable of the caller's).
        self.reach_steps = self.values if reach_steps is None else _longest_first(reach_steps)
        self._salt, self._digests = _read_digests(digests)

    def __call__(self, text: str | None) -> str:
        if not text:
            return ""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        if self._digests:
            text = self._mask_digests(text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def digests(self, values: Iterable[str] | None = None) -> dict[str, Any]:
        """A record of salted digests of ``values`` (default: those reaching steps), never the values."""
        salt = secrets.token_bytes(16)
        chosen = self.reach_steps if values is None else _longest_first(values)
        return {"salt": salt.hex(), "values": [[len(_utf8(v)), _digest(salt, v)] for v in chosen]}

    def _mask_digests(self, text: str) -> str:
        # One pass per recorded length (in UTF-8 bytes) over every window of the text; the salted
        # hash state is made once and copied per window (the cost is the per-window call).
        data = text.encode("utf-8", "surrogatepass")
        view = memoryview(data)
        base = hashlib.sha256(self._salt)
        spans: list[tuple[int, int]] = []
        for length, wanted in self._digests.items():
            for start in range(len(data) - length + 1):
                h = base.copy()
                h.update(view[start:start + length])
                if h.hexdigest() in wanted:
                    spans.append((start, start + length))
        if not spans:
            return text
        for start, end in sorted(_merge(spans), reverse=True):
            data = data[:start] + MASK.encode() + data[end:]
        return data.decode("utf-8", "replace")

    def argv(self, argv: Sequence[str]) -> list[str]:
        """An argument vector with secrets masked, also a value given after ``--password``."""
        out: list[str] = []
        for arg in argv:
            flag = out[-1] if out else ""
            out.append(MASK if _FLAG.match(flag) else self(str(arg)))
        return out


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _digest(salt: bytes, value: str) -> str:
    return hashlib.sha256(salt + _utf8(value)).hexdigest()


def _read_digests(record: Mapping[str, Any] | None) -> tuple[bytes, dict[int, set[str]]]:
    """(salt, length -> digests) of a record made by :meth:`Redactor.digests`; junk is ignored."""
    try:
        salt = bytes.fromhex(record["salt"]) if record else b""
        by_length: dict[int, set[str]] = {}
        for length, digest in (record or {}).get("values", ()):
            if isinstance(length, int) and length >= MIN_VALUE and isinstance(digest, str):
                by_length.setdefault(length, set()).add(digest)
        return salt, by_length
    except (KeyError, TypeError, ValueError, AttributeError):
        return b"", {}


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def project_redactor(manifest: Any = None, overrides: Mapping[str, Any] | None = None,
                     digests: Mapping[str, Any] | None = None) -> Redactor:
    """The redactor of a project: the caller's secret environment variables (those a profile
    passes through included), the secret-named params of the manifest and of ``overrides``, and
    the values behind ``digests`` (a run's record of them)."""
    names = [n for profile in getattr(manifest, "profiles", {}).values() for n in getattr(profile, "env", ())
             if SECRET_NAME.search(n)]
    passed = [os.environ[n] for n in names if n in os.environ]
    params = secret_params(getattr(manifest, "params", None) or {}) + secret_params(dict(overrides or {}))
    return Redactor([*secret_values(), *passed, *params], digests, reach_steps=[*passed, *params])
