"""What a command may do to get what the lock names (kept light: the runner imports it at start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Provision:
    """What a command may do to get an environment the lock names but this machine lacks.

    The default is what pixi and uv do: download the missing artifacts (``--offline``: from the
    cache only) and install the environment (``--frozen``: neither; it must exist already).
    Nothing is ever re-solved: a missing or stale lock is an error before this is asked.
    """

    fetch: bool = True
    create: bool = True
    reporter: Any = None  # a repropack.lock.fetcher.Reporter: download progress

    @classmethod
    def from_flags(cls, *, offline: bool = False, frozen: bool = False, reporter: Any = None) -> Provision:
        return cls(fetch=not (offline or frozen), create=not frozen, reporter=reporter)
