"""The one retry policy: whether a failed attempt (of an instance or a pipe unit) runs again, and when."""

from __future__ import annotations

from typing import Any

from repropack.backends.base import CANCELLED

NEVER_RETRIED = frozenset({CANCELLED, "submit"})  # stopped by the user; could not even be submitted


class RetryPolicy:
    def __init__(self, options: Any):
        self.base = options.retry_backoff
        self.cap = options.max_backoff

    def delay(self, attempt: int) -> float:
        """Backoff before attempt `attempt` (2, 3, ...): base, 2*base, 4*base ... capped."""
        return min(self.cap, self.base * (2 ** max(0, attempt - 2)))

    def after(self, attempt: int, failure: str, *, retries: int, stopping: bool) -> float | None:
        """Seconds before the next attempt after `attempt` failed with `failure`; None: no retry."""
        if attempt <= retries and not stopping and failure not in NEVER_RETRIED:
            return self.delay(attempt + 1)
        return None

