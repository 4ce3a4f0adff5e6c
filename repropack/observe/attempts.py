"""The cause of a failed attempt, read from the run's records through the one reader (formats 1 and 2)."""

from __future__ import annotations

from typing import Any

from repropack.observe.causes import TAIL_BYTES, TAIL_LINES, Cause, CauseTable, builtin


def attempt_log_of(view: Any, attempt: Any) -> str:
    """The tail of an attempt's stderr then stdout (a RunView and one of its AttemptRecords)."""
    parts = []
    for name in ("stderr", "stdout"):
        text = view.stream(attempt, name, max_bytes=TAIL_BYTES).decode("utf-8", "replace")
        parts.append("\n".join(text.splitlines()[-TAIL_LINES:]))
    return "\n".join(p for p in parts if p)


def diagnose_attempt(view: Any, instance_id: str, failure: str | None,
                     table: CauseTable | None = None) -> Cause | None:
    """The cause of the instance's last attempt in ``view`` (None when it was cancelled or has none)."""
    if failure == "cancelled":
        return None  # the user stopped it: no cause to find
    last = view.last_attempt(instance_id) if view is not None else None
    return (table or builtin()).match(failure=failure, exit_status=last.exit_status if last else None,
                                      signal=last.signal if last else None,
                                      log=attempt_log_of(view, last) if last else "")
